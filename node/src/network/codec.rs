//! Length-prefixed frames: a 4-byte big-endian length, then that many bytes.
//!
//! The reader checks the declared length against the cap before it reads (or allocates) any of
//! the body, and grows its buffer only as bytes actually arrive, so a peer that announces a
//! large frame and then goes quiet holds at most what it has sent.

use futures::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use std::io;

/// Bytes of the length prefix.
pub const FRAME_HEADER_BYTES: usize = 4;

/// Buffer growth step while reading a frame body.
const READ_CHUNK_BYTES: usize = 64 * 1024;

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {len} bytes exceeds the cap of {max} bytes")]
    TooLarge { len: usize, max: usize },
    #[error("stream ended inside a frame")]
    Truncated,
    #[error("io: {0}")]
    Io(#[from] io::Error),
}

/// Reads one frame of at most `max` bytes. `Ok(None)` is a clean end of stream between frames.
pub async fn read_frame<R>(reader: &mut R, max: usize) -> Result<Option<Vec<u8>>, FrameError>
where
    R: AsyncRead + Unpin,
{
    let mut header = [0u8; FRAME_HEADER_BYTES];
    let mut filled = 0;
    while filled < FRAME_HEADER_BYTES {
        let n = reader.read(&mut header[filled..]).await?;
        if n == 0 {
            return if filled == 0 {
                Ok(None)
            } else {
                Err(FrameError::Truncated)
            };
        }
        filled += n;
    }
    let len = usize::try_from(u32::from_be_bytes(header)).unwrap_or(usize::MAX);
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    let mut body = Vec::with_capacity(len.min(READ_CHUNK_BYTES));
    let mut limited = reader.take(len as u64);
    let mut chunk = [0u8; 8 * 1024];
    while body.len() < len {
        let n = limited.read(&mut chunk).await?;
        if n == 0 {
            return Err(FrameError::Truncated);
        }
        body.extend_from_slice(&chunk[..n]);
    }
    debug_assert_eq!(body.len(), len);
    Ok(Some(body))
}

/// Writes one frame; the caller flushes. Fails for bodies that do not fit the 4-byte prefix.
pub async fn write_frame<W>(writer: &mut W, body: &[u8]) -> io::Result<()>
where
    W: AsyncWrite + Unpin,
{
    let len = u32::try_from(body.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame longer than 4 GiB"))?;
    writer.write_all(&len.to_be_bytes()).await?;
    writer.write_all(body).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;
    use futures::io::Cursor;

    fn encode(bodies: &[&[u8]]) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        block_on(async {
            for body in bodies {
                write_frame(&mut out, body).await.expect("write to memory");
            }
        });
        out.into_inner()
    }

    #[test]
    fn frames_round_trip_in_order_then_clean_end() {
        let bytes = encode(&[b"one", b"", &[7u8; 100_000]]);
        let mut r = Cursor::new(bytes);
        block_on(async {
            assert_eq!(
                read_frame(&mut r, 1 << 20).await.expect("1"),
                Some(b"one".to_vec())
            );
            assert_eq!(
                read_frame(&mut r, 1 << 20).await.expect("2"),
                Some(Vec::new())
            );
            assert_eq!(
                read_frame(&mut r, 1 << 20).await.expect("3"),
                Some(vec![7u8; 100_000])
            );
            assert_eq!(read_frame(&mut r, 1 << 20).await.expect("end"), None);
        });
    }

    #[test]
    fn oversized_frame_is_refused_from_its_header_alone() {
        // Only the header is present: the reader must refuse without waiting for the body.
        let mut r = Cursor::new(u32::MAX.to_be_bytes().to_vec());
        let err = block_on(read_frame(&mut r, 1024)).expect_err("must refuse");
        assert!(matches!(err, FrameError::TooLarge { len, max: 1024 } if len == u32::MAX as usize));
    }

    #[test]
    fn frame_at_the_cap_is_accepted_and_one_over_is_not() {
        let mut r = Cursor::new(encode(&[&[1u8; 1024]]));
        assert!(
            block_on(read_frame(&mut r, 1024))
                .expect("at cap")
                .is_some()
        );
        let mut r = Cursor::new(encode(&[&[1u8; 1025]]));
        assert!(matches!(
            block_on(read_frame(&mut r, 1024)),
            Err(FrameError::TooLarge { .. })
        ));
    }

    #[test]
    fn truncated_header_or_body_is_an_error() {
        let mut bytes = encode(&[b"hello"]);
        bytes.pop();
        let mut r = Cursor::new(bytes);
        assert!(matches!(
            block_on(read_frame(&mut r, 64)),
            Err(FrameError::Truncated)
        ));
        let mut r = Cursor::new(vec![0u8, 0]);
        assert!(matches!(
            block_on(read_frame(&mut r, 64)),
            Err(FrameError::Truncated)
        ));
    }
}
