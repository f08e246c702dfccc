//! Durable storage of blocks, state and the access log (RocksDB).
