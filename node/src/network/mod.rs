//! Peer-to-peer networking among genesis members (libp2p).
