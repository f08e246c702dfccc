//! Real swarms on 127.0.0.1: membership, delivery, size cap, stalled peers and redialing.
//!
//! Members are built from the test kit's seeded keys (member `i` has `seeded_key(i)`, as in its
//! test consortium) rather than genesis files. Every wait is bounded; a failing test says what it saw and what it wanted.

use bytes::Bytes;
use cradle_ledger::{Keypair, PublicKey};
use cradle_node::network::{
    NetEvent, NetworkConfig, NetworkHandle, NetworkStats, Peer, peer_id_of, start,
};
use cradle_testkit::seeded_key as key;
use libp2p::{Multiaddr, StreamProtocol};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc::Receiver;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(15);

fn pk(i: u8) -> PublicKey {
    key(i).public_key()
}

fn loopback() -> Multiaddr {
    "/ip4/127.0.0.1/tcp/0".parse().expect("static multiaddr")
}

fn config(me: u8, listen: Multiaddr, peers: &[(u8, Option<Multiaddr>)]) -> NetworkConfig {
    let peers = peers
        .iter()
        .map(|(i, addr)| Peer {
            public_key: pk(*i),
            addr: addr.clone(),
        })
        .collect();
    NetworkConfig::new(listen, key(me).ed25519_seed(), peers)
}

async fn node(cfg: NetworkConfig) -> (NetworkHandle, Receiver<NetEvent>, Multiaddr) {
    let (handle, rx) = start(cfg).await.expect("network starts");
    let addr = handle
        .listen_addrs()
        .first()
        .cloned()
        .expect("a listen address");
    (handle, rx, addr)
}

/// Waits (bounded) for the first event that `want` accepts, discarding others.
async fn next_matching<T>(
    rx: &mut Receiver<NetEvent>,
    within: Duration,
    mut want: impl FnMut(NetEvent) -> Option<T>,
) -> Option<T> {
    timeout(within, async {
        while let Some(event) = rx.recv().await {
            if let Some(t) = want(event) {
                return Some(t);
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
}

async fn message_from(
    rx: &mut Receiver<NetEvent>,
    within: Duration,
) -> Option<(PublicKey, Vec<u8>)> {
    next_matching(rx, within, |e| match e {
        NetEvent::Message { from, bytes, .. } => Some((from, bytes)),
        _ => None,
    })
    .await
}

fn is_connected(e: &NetEvent, i: u8) -> bool {
    matches!(e, NetEvent::PeerConnected(k) if *k == pk(i))
}

/// Waits until `handle` reports exactly the members in `want` as connected.
async fn wait_connected(handle: &NetworkHandle, want: &[u8]) {
    let mut want: Vec<PublicKey> = want.iter().map(|i| pk(*i)).collect();
    want.sort();
    let deadline = Instant::now() + WAIT;
    loop {
        let mut have = handle.connected_peers();
        have.sort();
        if have == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "connected peers: saw {have:?}, wanted {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits (bounded) until `handle`'s counters satisfy `done`, and returns them.
/// On failure it shows the senders' counters too.
async fn wait_stats(
    handle: &NetworkHandle,
    senders: &[&NetworkHandle],
    what: &str,
    done: impl Fn(&NetworkStats) -> bool,
) -> NetworkStats {
    let deadline = Instant::now() + WAIT;
    loop {
        let s = handle.stats();
        if done(&s) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: saw {s:?}, senders {:?}",
            senders.iter().map(|h| h.stats()).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The tests live in a module named `network` so that `cargo test -p cradle-node network`
/// selects them along with the module's unit tests.
mod network {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn three_members_connect_broadcast_send_and_request() {
        let (a, mut rx_a, addr_a) = node(config(1, loopback(), &[(2, None), (3, None)])).await;
        let (b, mut rx_b, addr_b) = node(config(
            2,
            loopback(),
            &[(1, Some(addr_a.clone())), (3, None)],
        ))
        .await;
        let (c, mut rx_c, _) = node(config(
            3,
            loopback(),
            &[(1, Some(addr_a)), (2, Some(addr_b))],
        ))
        .await;
        assert_eq!(a.local_peer_id(), peer_id_of(&pk(1)).expect("peer id"));
        wait_connected(&a, &[2, 3]).await;
        wait_connected(&b, &[1, 3]).await;
        wait_connected(&c, &[1, 2]).await;

        a.broadcast(Bytes::from_static(b"hello all"));
        for (name, rx) in [("b", &mut rx_b), ("c", &mut rx_c)] {
            let got = message_from(rx, WAIT).await;
            assert_eq!(
                got,
                Some((pk(1), b"hello all".to_vec())),
                "broadcast at {name}"
            );
        }

        a.send(&pk(2), Bytes::from_static(b"only b"));
        assert_eq!(
            message_from(&mut rx_b, WAIT).await,
            Some((pk(1), b"only b".to_vec()))
        );
        c.send(&pk(2), Bytes::from_static(b"from c"));
        assert_eq!(
            message_from(&mut rx_b, WAIT).await,
            Some((pk(3), b"from c".to_vec()))
        );
        assert_eq!(
            message_from(&mut rx_c, Duration::from_millis(200)).await,
            None,
            "c got a send meant for b"
        );

        let answer = async {
            next_matching(&mut rx_a, WAIT, |e| match e {
                NetEvent::Request { from, bytes, reply } => {
                    assert_eq!(from, pk(2));
                    let mut response = bytes;
                    response.reverse();
                    reply.send(response).expect("requester waiting");
                    Some(())
                }
                _ => None,
            })
            .await
        };
        let a_key = pk(1);
        let (response, answered) = tokio::join!(b.request(&a_key, b"block 7".to_vec()), answer);
        assert_eq!(answered, Some(()), "a never saw the request");
        assert_eq!(response.expect("request succeeds"), b"7 kcolb".to_vec());

        // One-way latency over loopback, broadcast to receipt, measured in-process.
        let mut samples = Vec::new();
        for i in 0..200u32 {
            let sent = Instant::now();
            a.broadcast(Bytes::from(i.to_be_bytes().to_vec()));
            let got = message_from(&mut rx_b, WAIT).await;
            samples.push(sent.elapsed());
            assert_eq!(got, Some((pk(1), i.to_be_bytes().to_vec())));
            message_from(&mut rx_c, WAIT).await.expect("c keeps up");
        }
        samples.sort();
        let median = samples[samples.len() / 2];
        let p99 = samples[samples.len() * 99 / 100];
        eprintln!("broadcast latency a->b over loopback: median {median:?}, p99 {p99:?}");
        assert!(
            median < Duration::from_millis(5),
            "median latency {median:?}, wanted < 5 ms"
        );

        let stats = a.stats();
        assert_eq!(stats.peers_connected, 2);
        assert!(stats.messages_out > 2 * 201, "a's stats: {stats:?}");
        assert_eq!(stats.messages_dropped_out, 0, "a's stats: {stats:?}");
        for h in [a, b, c] {
            h.shutdown().await;
        }
        // After shutdown the event channel closes, so a node's receive loop ends.
        let closed = timeout(WAIT, async { while rx_a.recv().await.is_some() {} }).await;
        assert!(
            closed.is_ok(),
            "a's event channel still open after shutdown"
        );
    }

    #[test]
    fn config_from_genesis_lists_every_other_member_and_refuses_outsiders() {
        use cradle_genesis::{
            GenesisDoc, LocalnetOptions, localnet::deterministic_seed, write_localnet,
        };
        let out = std::env::temp_dir().join(format!("cradle-network-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&out);
        let mut opts = LocalnetOptions::new(4, &out);
        opts.deterministic = true;
        let localnet = write_localnet(&opts).expect("localnet written");
        let genesis = GenesisDoc::load(&localnet.genesis_path).expect("genesis loads");
        let me = Keypair::from_seed(&deterministic_seed(b"node0"));

        let cfg =
            NetworkConfig::from_genesis(&genesis, &me, "/ip4/127.0.0.1/tcp/0").expect("config");
        assert_eq!(cfg.peers.len(), genesis.members.len() - 1);
        assert!(cfg.peers.iter().all(|p| p.public_key != me.public_key()));
        // Three other nodes have addresses; the regulator runs no node.
        assert_eq!(cfg.peers.iter().filter(|p| p.addr.is_some()).count(), 3);
        assert_eq!(*cfg.keypair_seed, *me.ed25519_seed());
        assert_eq!(cfg.message_bytes_max, 16 * 1024 * 1024);
        assert_eq!(cfg.outbound_queue_max, 1024);

        let outsider = key(99);
        let err = NetworkConfig::from_genesis(&genesis, &outsider, "/ip4/127.0.0.1/tcp/0");
        assert!(err.is_err(), "an outsider got a config");
        let err = NetworkConfig::from_genesis(&genesis, &me, "not a multiaddr");
        assert!(err.is_err(), "a bad listen address was accepted");
        let _ = std::fs::remove_dir_all(&out);
    }

    /// A `MakeWriter` that keeps everything logged, to check what the node said.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("log buffer").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().expect("log buffer")).into_owned()
        }
    }

    // current_thread: every task runs on this thread, so the thread-local log capture sees them.
    #[tokio::test(flavor = "current_thread")]
    async fn non_member_is_refused_logged_and_never_delivers() {
        let logs = Captured::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::WARN)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);

        let (a, mut rx_a, addr_a) = node(config(1, loopback(), &[(2, None)])).await;
        // Key 99 is no member of a's consortium, but believes a is its peer.
        let (stranger, _rx_x, _) = node(config(99, loopback(), &[(1, Some(addr_a))])).await;
        let stranger_id = stranger.local_peer_id();

        let deadline = Instant::now() + WAIT;
        while a.stats().connections_refused == 0 {
            assert!(
                Instant::now() < deadline,
                "a never refused the stranger: {:?}",
                a.stats()
            );
            stranger.broadcast(Bytes::from_static(b"let me in"));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Keep trying for a while: the stranger redials and sends whenever it thinks it can.
        for _ in 0..25 {
            stranger.broadcast(Bytes::from_static(b"let me in"));
            stranger.send(&pk(1), Bytes::from_static(b"just me"));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let request = stranger.request(&pk(1), b"blocks please".to_vec()).await;
        assert!(request.is_err(), "stranger's request answered: {request:?}");

        let leaked = next_matching(&mut rx_a, Duration::from_millis(300), Some).await;
        assert!(
            leaked.is_none(),
            "a delivered something from the stranger: {leaked:?}"
        );
        assert!(
            a.connected_peers().is_empty(),
            "a connected to {:?}",
            a.connected_peers()
        );
        assert_eq!(a.stats().messages_in, 0);

        let text = logs.text();
        let refusal = text
            .lines()
            .find(|l| l.contains("WARN") && l.contains("refused inbound connection"))
            .unwrap_or_else(|| panic!("no refusal logged; log was:\n{text}"));
        assert!(
            refusal.contains(&stranger_id.to_string()),
            "refusal names no peer id: {refusal}"
        );
        assert!(
            refusal.contains("127.0.0.1"),
            "refusal names no address: {refusal}"
        );
        a.shutdown().await;
        stranger.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn oversized_message_is_refused_and_later_messages_still_arrive() {
        let cap = 64 * 1024;
        let mut cfg_a = config(1, loopback(), &[(2, None)]);
        cfg_a.message_bytes_max = cap;
        let (a, mut rx_a, addr_a) = node(cfg_a).await;
        // b allows itself bigger messages than a accepts, as a misbehaving member would.
        let (b, _rx_b, _) = node(config(2, loopback(), &[(1, Some(addr_a))])).await;
        wait_connected(&a, &[2]).await;

        b.send(&pk(1), Bytes::from(vec![0xAB; cap + 1]));
        let deadline = Instant::now() + WAIT;
        while a.stats().messages_oversized == 0 {
            assert!(
                Instant::now() < deadline,
                "a never refused the frame: {:?}",
                a.stats()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // The refused stream was reset; b's writer reopens one, so a later message gets through.
        // The first message after the reset may be lost with the old stream, hence the retries.
        let mut delivered = None;
        for i in 0..100u32 {
            b.send(&pk(1), Bytes::from(format!("small {i}").into_bytes()));
            if let Some((from, bytes)) = message_from(&mut rx_a, Duration::from_millis(100)).await {
                assert!(
                    bytes.len() <= cap,
                    "a delivered {} bytes over the cap",
                    bytes.len()
                );
                delivered = Some((from, bytes));
                break;
            }
        }
        let (from, bytes) =
            delivered.expect("a never received a valid message after the oversized one");
        assert_eq!(from, pk(2));
        assert!(bytes.starts_with(b"small "), "got {bytes:?}");
        assert_eq!(
            a.connected_peers(),
            vec![pk(2)],
            "b should still be connected"
        );
        assert_eq!(a.stats().messages_oversized, 1);
        a.shutdown().await;
        b.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn slow_consumer_drops_flood_but_keeps_peer_events_and_recovers() {
        use cradle_node::network::{EVENTS_MAX, EVENTS_RESERVED};
        let (a, mut rx_a, addr_a) = node(config(1, loopback(), &[(2, None)])).await;
        let (b, _rx_b, _) = node(config(2, loopback(), &[(1, Some(addr_a))])).await;
        wait_connected(&a, &[2]).await;

        // a's consumer reads nothing while b sends more than the event channel holds.
        let flood = EVENTS_MAX + 1000;
        for i in 0..flood {
            b.send(&pk(1), Bytes::from(vec![1u8; 64]));
            if i % 500 == 499 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        let deadline = Instant::now() + WAIT;
        loop {
            let s = a.stats();
            if s.messages_in + s.messages_dropped_in == flood as u64 {
                break;
            }
            assert!(Instant::now() < deadline, "flood not accounted for: {s:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let stats = a.stats();
        assert!(stats.messages_dropped_in > 0, "nothing dropped: {stats:?}");
        assert!(
            stats.messages_in <= (EVENTS_MAX - EVENTS_RESERVED) as u64,
            "messages used the reserved slots: {stats:?}"
        );
        assert_eq!(
            a.connected_peers(),
            vec![pk(2)],
            "the flood cost the connection"
        );

        // Once the consumer catches up, new messages flow again.
        let mut drained = 0;
        while rx_a.try_recv().is_ok() {
            drained += 1;
        }
        assert_eq!(
            drained as u64,
            stats.messages_in + 1,
            "PeerConnected plus the delivered messages"
        );
        b.send(&pk(1), Bytes::from_static(b"after the flood"));
        assert_eq!(
            message_from(&mut rx_a, WAIT).await,
            Some((pk(2), b"after the flood".to_vec()))
        );
        a.shutdown().await;
        b.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_flooding_peer_is_held_to_its_byte_budget_while_another_is_heard() {
        const MSG: usize = 16 * 1024;
        const PEER_BUDGET_MSGS: u64 = 8;
        let mut cfg = config(1, loopback(), &[(2, None), (3, None)]);
        cfg.message_bytes_max = 2 * MSG;
        cfg.inbound_peer_bytes_max = PEER_BUDGET_MSGS as usize * MSG;
        cfg.inbound_bytes_max = 2 * PEER_BUDGET_MSGS as usize * MSG;
        let (a, mut rx_a, addr_a) = node(cfg).await;
        let (b, _rx_b, _) = node(config(
            2,
            loopback(),
            &[(1, Some(addr_a.clone())), (3, None)],
        ))
        .await;
        let (c, _rx_c, _) = node(config(3, loopback(), &[(1, Some(addr_a)), (2, None)])).await;
        // Each side registers the connection on its own: b and c drop what they send before.
        wait_connected(&a, &[2, 3]).await;
        wait_connected(&b, &[1]).await;
        wait_connected(&c, &[1]).await;
        // A writer may lose its first batch while its stream comes up (the sender counts it),
        // which is not what this test is about: each sender gets one message through first.
        for (sender, i) in [(&b, 2), (&c, 3)] {
            let deadline = Instant::now() + WAIT;
            loop {
                sender.send(&pk(1), Bytes::from_static(b"hello"));
                let got = message_from(&mut rx_a, Duration::from_millis(500)).await;
                if got.is_some_and(|(from, _)| from == pk(i)) {
                    break;
                }
                assert!(Instant::now() < deadline, "no message from {i} got through");
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        while rx_a.try_recv().is_ok() {}
        let base = a.stats();
        assert_eq!(base.messages_over_budget, 0, "{base:?}");
        // Counts since the warm-up.
        let since = move |s: &NetworkStats| NetworkStats {
            messages_in: s.messages_in - base.messages_in,
            messages_dropped_in: s.messages_dropped_in - base.messages_dropped_in,
            bytes_dropped_in: s.bytes_dropped_in - base.bytes_dropped_in,
            ..*s
        };

        // a's consumer reads nothing while b sends far more than its budget.
        let flood: u64 = 100;
        for i in 0..flood {
            b.send(&pk(1), Bytes::from(vec![2u8; MSG]));
            if i % 20 == 19 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        let s = since(
            &wait_stats(&a, &[&b, &c], "flood accounted for", |s| {
                since(s).messages_in + s.messages_over_budget == flood
            })
            .await,
        );
        assert_eq!(
            s.messages_in, PEER_BUDGET_MSGS,
            "b got exactly its budget: {s:?}"
        );
        assert_eq!(
            s.messages_dropped_in, 0,
            "the event channel had room: {s:?}"
        );
        assert_eq!(
            s.bytes_dropped_in,
            (flood - PEER_BUDGET_MSGS) * MSG as u64,
            "dropped bytes counted: {s:?}"
        );

        // c's messages still arrive while b's wait unread.
        for _ in 0..4 {
            c.send(&pk(1), Bytes::from(vec![3u8; MSG]));
        }
        wait_stats(&a, &[&b, &c], "c's messages delivered", |s| {
            since(s).messages_in == PEER_BUDGET_MSGS + 4
        })
        .await;
        let mut held = Vec::new();
        while let Ok(event) = rx_a.try_recv() {
            held.push(event);
        }
        let from = |i: u8| {
            held.iter()
                .filter(|e| matches!(e, NetEvent::Message { from, .. } if *from == pk(i)))
                .count() as u64
        };
        assert_eq!(
            (from(2), from(3)),
            (PEER_BUDGET_MSGS, 4),
            "messages by sender"
        );

        // Taken off the channel but not yet handled, b's messages still count against it...
        b.send(&pk(1), Bytes::from(vec![2u8; MSG]));
        wait_stats(&a, &[&b, &c], "one more from b dropped", |s| {
            s.messages_over_budget == flood - PEER_BUDGET_MSGS + 1
        })
        .await;
        // ...and once the node is done with them, b is heard again.
        drop(held);
        b.send(&pk(1), Bytes::from_static(b"after the flood"));
        assert_eq!(
            message_from(&mut rx_a, WAIT).await,
            Some((pk(2), b"after the flood".to_vec()))
        );
        a.shutdown().await;
        b.shutdown().await;
        c.shutdown().await;
    }

    /// A member whose process is alive and keeps its connection open but never reads the message
    /// streams opened to it (it runs no ping either, which the node tolerates).
    async fn stalled_member(seed: u8, dial: Multiaddr) -> tokio::task::JoinHandle<()> {
        use futures::StreamExt as _;
        let mut seed_bytes = key(seed).ed25519_seed();
        let identity = libp2p::identity::Keypair::ed25519_from_bytes(seed_bytes.as_mut_slice())
            .expect("ed25519 seed");
        let mut swarm = libp2p::SwarmBuilder::with_existing_identity(identity)
            .with_tokio()
            .with_tcp(
                libp2p::tcp::Config::default(),
                libp2p::noise::Config::new,
                libp2p::yamux::Config::default,
            )
            .expect("tcp transport")
            .with_behaviour(|_| libp2p_stream::Behaviour::new())
            .expect("behaviour")
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
            .build();
        let mut incoming = swarm
            .behaviour()
            .new_control()
            .accept(StreamProtocol::new("/cradle/msg/1"))
            .expect("accept once");
        swarm.dial(dial).expect("dial a");
        tokio::spawn(async move {
            let mut held = Vec::new();
            loop {
                tokio::select! {
                    _ = swarm.select_next_some() => {}
                    Some((_, stream)) = incoming.next() => held.push(stream),
                }
            }
        })
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stalled_peer_does_not_stall_broadcast_to_others() {
        let queue = 64;
        let mut cfg_a = config(1, loopback(), &[(3, None), (4, None)]);
        cfg_a.outbound_queue_max = queue;
        let (a, _rx_a, addr_a) = node(cfg_a).await;
        let (c, mut rx_c, _) = node(config(3, loopback(), &[(1, Some(addr_a.clone()))])).await;
        let stalled = stalled_member(4, addr_a).await;
        wait_connected(&a, &[3, 4]).await;

        // 640 messages of 128 KiB (80 MiB): far more than the stalled member's queue, yamux window
        // and socket buffers can hold, so its queue must overflow while c still gets everything.
        let rounds = 40;
        let per_round = 16;
        let message = Bytes::from(vec![0x5A; 128 * 1024]);
        let mut slowest_broadcast = Duration::ZERO;
        let started = Instant::now();
        for round in 0..rounds {
            for _ in 0..per_round {
                let t = Instant::now();
                a.broadcast(message.clone());
                slowest_broadcast = slowest_broadcast.max(t.elapsed());
            }
            for i in 0..per_round {
                let got = message_from(&mut rx_c, WAIT).await;
                assert!(
                    got.is_some(),
                    "c stalled at round {round}, message {i}; a: {:?}",
                    a.stats()
                );
            }
        }
        let stats = a.stats();
        eprintln!(
            "stalled-peer run: {:?} for {} messages to c; slowest broadcast call {slowest_broadcast:?}; {stats:?}",
            started.elapsed(),
            rounds * per_round
        );
        assert!(
            slowest_broadcast < Duration::from_millis(50),
            "broadcast blocked for {slowest_broadcast:?}"
        );
        assert!(
            stats.messages_dropped_out > 0,
            "the stalled member's queue never filled: {stats:?}"
        );
        assert!(
            stats.messages_dropped_out <= (rounds * per_round) as u64,
            "drops beyond the stalled member: {stats:?}"
        );
        stalled.abort();
        a.shutdown().await;
        c.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn member_that_restarts_is_redialed() {
        // b has no address for a: only a's redialing can bring the pair back together.
        let (b, _rx_b, addr_b) = node(config(2, loopback(), &[(1, None)])).await;
        let (a, mut rx_a, _) = node(config(1, loopback(), &[(2, Some(addr_b.clone()))])).await;
        let up = next_matching(&mut rx_a, WAIT, |e| is_connected(&e, 2).then_some(())).await;
        assert_eq!(up, Some(()), "a never connected to b");

        b.shutdown().await;
        let down = next_matching(&mut rx_a, WAIT, |e| {
            matches!(e, NetEvent::PeerDisconnected(k) if k == pk(2)).then_some(())
        })
        .await;
        assert_eq!(down, Some(()), "a never noticed b leave");

        let (b, mut rx_b, _) = node(config(2, addr_b, &[(1, None)])).await;
        let up = next_matching(&mut rx_a, WAIT, |e| is_connected(&e, 2).then_some(())).await;
        assert_eq!(up, Some(()), "a never redialed b");
        a.send(&pk(2), Bytes::from_static(b"welcome back"));
        assert_eq!(
            message_from(&mut rx_b, WAIT).await,
            Some((pk(1), b"welcome back".to_vec()))
        );
        a.shutdown().await;
        b.shutdown().await;
    }
}
