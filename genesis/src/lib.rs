//! `cradle-genesis`: the consortium's founding document.
