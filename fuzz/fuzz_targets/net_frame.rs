//! The libp2p stream framing (`network::codec::read_frame`): a 4-byte length, then the body,
//! under a cap. Every frame read must be exactly what `write_frame` writes for its body, and the
//! frames read must account for the input consumed.
#![no_main]

use cradle_node::network::codec::{FRAME_HEADER_BYTES, FrameError, read_frame, write_frame};
use futures::executor::block_on;
use futures::io::Cursor;
use libfuzzer_sys::fuzz_target;

/// Small enough that the fuzzer reaches the over-cap refusal.
const CAP: usize = 4096;

fuzz_target!(|data: &[u8]| {
    block_on(async {
        let mut reader = Cursor::new(data);
        let mut rewritten = Cursor::new(Vec::new());
        loop {
            match read_frame(&mut reader, CAP).await {
                Ok(Some(body)) => {
                    assert!(body.len() <= CAP, "a frame over the cap was read");
                    if write_frame(&mut rewritten, &body).await.is_err() {
                        panic!("writing to memory failed");
                    }
                }
                Ok(None) => {
                    // A clean end only between frames, with every byte consumed.
                    assert_eq!(reader.position() as usize, data.len());
                    break;
                }
                Err(FrameError::TooLarge { len, max }) => {
                    assert!(len > max);
                    break;
                }
                Err(FrameError::Truncated) => {
                    assert_eq!(reader.position() as usize, data.len());
                    break;
                }
                Err(FrameError::Io(e)) => panic!("io error from memory: {e}"),
            }
        }
        let rewritten = rewritten.into_inner();
        assert_eq!(
            &data[..rewritten.len()],
            &rewritten[..],
            "frames do not round-trip"
        );
        // What was not re-emitted is at most one refused or truncated frame.
        if rewritten.len() < data.len() {
            assert!(data.len() - rewritten.len() >= 1);
        }
        let frames_bytes = rewritten.len();
        assert!(frames_bytes == 0 || frames_bytes >= FRAME_HEADER_BYTES);
    });
});
