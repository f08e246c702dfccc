//! A progress bar for large transfers, shown only on a terminal.

use std::io::IsTerminal;

use cradle_client::session::Progress;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// An indicatif bar on stderr, shown only when stdout is a terminal and the transfer is big.
pub(crate) struct Bar(std::cell::RefCell<Option<ProgressBar>>);

/// Transfers smaller than this show no bar.
const BAR_BYTES_MIN: u64 = 8 * 1024 * 1024;

impl Bar {
    pub(crate) fn new() -> Self {
        Self(std::cell::RefCell::new(None))
    }
}

impl Progress for Bar {
    fn start(&self, what: &str, total: u64) {
        if !std::io::stdout().is_terminal() || total < BAR_BYTES_MIN {
            return;
        }
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(
            "{msg:>12} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(what.to_string());
        *self.0.borrow_mut() = Some(bar);
    }
    fn advance(&self, bytes: u64) {
        if let Some(bar) = self.0.borrow().as_ref() {
            bar.inc(bytes);
        }
    }
    fn finish(&self) {
        if let Some(bar) = self.0.borrow_mut().take() {
            bar.finish_and_clear();
        }
    }
}
