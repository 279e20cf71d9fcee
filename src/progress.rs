//! Progress on standard error for long work, shown only when stderr is a terminal and the user did not ask for
//! quiet; otherwise every call is a no-op.

use std::io::{self, IsTerminal, Read};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

#[derive(Clone, Default)]
pub struct Progress {
    bar: Option<ProgressBar>,
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Progress").field("shown", &self.bar.is_some()).finish()
    }
}

impl Progress {
    /// A progress display if `wanted` and stderr is a terminal.
    pub fn new(wanted: bool) -> Progress {
        if !wanted || !io::stderr().is_terminal() {
            return Progress::default();
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.enable_steady_tick(Duration::from_millis(200));
        Progress { bar: Some(bar) }
    }

    /// Starts counting bytes towards `total` (unknown for standard input).
    pub fn start(&self, total: Option<u64>, message: &str) {
        if let Some(bar) = &self.bar {
            let template = match total {
                Some(_) => "{msg} [{wide_bar}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
                None => "{spinner} {msg} {bytes} {bytes_per_sec}",
            };
            bar.set_style(ProgressStyle::with_template(template).expect("valid template").progress_chars("=> "));
            bar.set_length(total.unwrap_or(0));
            bar.set_position(0);
            bar.set_message(message.to_string());
        }
    }

    pub fn inc(&self, bytes: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(bytes);
        }
    }

    pub fn message(&self, message: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(message.to_string());
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Counts the bytes read through it on a [`Progress`].
pub struct CountingReader<R> {
    inner: R,
    progress: Progress,
}

impl<R> CountingReader<R> {
    pub fn new(inner: R, progress: Progress) -> Self {
        CountingReader { inner, progress }
    }
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.inc(n as u64);
        Ok(n)
    }
}
