//! Black-box tests that start real Cradle processes and talk to them as a user would.
