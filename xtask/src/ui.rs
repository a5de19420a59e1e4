//! Status lines in kind's style, on stderr so stdout stays data:
//! ` • Step ...` while it runs, then ` ✓ Step (1.2s)` or ` ✗ Step (1.2s)`.
//! On a terminal the bullet spins and the line is rewritten in place;
//! elsewhere (CI logs, pipes) each state is a plain line. `NO_COLOR` is honoured.
//!
//! Every write of the binary to stdout and stderr goes through here: std's
//! `print!` and `eprintln!` panic when the reader went away
//! (`cargo xtask ... 2>&1 | head -3`), so this module's macros of the same
//! names replace them in every module (`main.rs` declares it first, with
//! `#[macro_use]`). A closed stderr loses progress lines, not the run; a
//! closed stdout drops the rest of the data, and the command still ends
//! with its own exit status.

use std::fmt;
use std::io::{ErrorKind, IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

// Under `cargo test` std's macros stay: the test harness captures only
// those. The binary's own runs are tested with a closed pipe (tests/cli.rs).
#[cfg(not(test))]
macro_rules! print {
    ($($arg:tt)*) => { $crate::ui::stdout(format_args!($($arg)*)) };
}
// None uses it now; it is here so that a new one does not reach std's.
#[cfg(not(test))]
#[allow(unused_macros)]
macro_rules! println {
    () => { $crate::ui::stdout(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::ui::stdout(format_args!("{}\n", format_args!($($arg)*))) };
}
// None uses it yet; it is here so that none uses std's.
#[cfg(not(test))]
#[allow(unused_macros)]
macro_rules! eprint {
    ($($arg:tt)*) => { $crate::ui::stderr(format_args!($($arg)*)) };
}
#[cfg(not(test))]
macro_rules! eprintln {
    () => { $crate::ui::stderr(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::ui::stderr(format_args!("{}\n", format_args!($($arg)*))) };
}

/// Set once stdout's reader went away: the rest of the data is dropped.
#[cfg_attr(test, allow(dead_code))] // only the macros use it
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// What became of one write.
#[derive(Debug, PartialEq, Eq)]
enum Written {
    Done,
    /// The reader went away (EPIPE).
    Closed,
    Failed(ErrorKind),
}

fn write_to(w: &mut impl Write, args: fmt::Arguments<'_>) -> Written {
    match w.write_fmt(args).and_then(|()| w.flush()) {
        Ok(()) => Written::Done,
        Err(e) if e.kind() == ErrorKind::BrokenPipe => Written::Closed,
        Err(e) => Written::Failed(e.kind()),
    }
}

/// Progress and errors: whatever becomes of them, the run goes on.
pub fn stderr(args: fmt::Arguments<'_>) {
    let _ = write_to(&mut std::io::stderr().lock(), args);
}

/// Data. A closed stdout (`| head`) drops the rest quietly; any other
/// failure (a full disk) is an error, as the data is the point.
#[cfg_attr(test, allow(dead_code))] // only the macros use it
pub fn stdout(args: fmt::Arguments<'_>) {
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return;
    }
    match write_to(&mut std::io::stdout().lock(), args) {
        Written::Done => {}
        Written::Closed => STDOUT_CLOSED.store(true, Ordering::Relaxed),
        Written::Failed(kind) => {
            stderr(format_args!(
                "ERROR: cannot write to standard output: {kind}\n"
            ));
            std::process::exit(1);
        }
    }
}

/// The last line of a failed run.
pub fn error(e: &anyhow::Error) {
    // `{:#}` prints the context chain on one line per cause, never a backtrace.
    stderr(format_args!("ERROR: {e:#}\n"));
}

const SPINNER: [&str; 8] = ["⠈", "⠐", "⠠", "⢀", "⡀", "⠄", "⠂", "⠁"];

/// How output is drawn; chosen once at start-up from the environment.
#[derive(Debug, Clone, Copy)]
pub struct Ui {
    /// Show each command and stream its output.
    pub verbose: bool,
    /// stderr is a terminal: spin and rewrite lines.
    pub tty: bool,
    pub color: bool,
}

impl Ui {
    pub fn from_env(verbose: bool) -> Ui {
        let tty = std::io::stderr().is_terminal();
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let dumb = std::env::var("TERM").is_ok_and(|t| t == "dumb");
        Ui {
            verbose,
            tty: tty && !dumb,
            color: tty && !no_color && !dumb,
        }
    }

    /// Runs `f` as one named step, drawing its status line.
    pub fn step<T>(&self, name: &str, f: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<T> {
        let started = Instant::now();
        let spinner = (self.tty && !self.verbose).then(|| Spinner::start(name.to_owned()));
        if spinner.is_none() {
            eprintln!(" • {name} ...");
        }
        let result = f();
        if let Some(s) = spinner {
            s.stop();
        }
        let elapsed = format_elapsed(started.elapsed());
        let mark = match (&result, self.color) {
            (Ok(_), true) => "\x1b[32m✓\x1b[0m",
            (Ok(_), false) => "✓",
            (Err(_), true) => "\x1b[31m✗\x1b[0m",
            (Err(_), false) => "✗",
        };
        let clear = if self.tty { "\r\x1b[2K" } else { "" };
        eprintln!("{clear} {mark} {name} ({elapsed})");
        result
    }

    /// A line of detail under the current step, shown only with `-v`.
    pub fn detail(&self, line: &str) {
        if self.verbose {
            eprintln!("   {line}");
        }
    }
}

fn format_elapsed(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs < 60.0 {
        format!("{secs:.1}s")
    } else {
        format!("{}m{:02}s", d.as_secs() / 60, d.as_secs() % 60)
    }
}

/// Redraws ` ⠈ name ...` every 100 ms on a background thread until stopped.
struct Spinner {
    done: Arc<AtomicBool>,
    handle: thread::JoinHandle<()>,
}

impl Spinner {
    fn start(name: String) -> Spinner {
        let done = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&done);
        let handle = thread::spawn(move || {
            let mut frame = 0;
            while !flag.load(Ordering::Relaxed) {
                let mut err = std::io::stderr().lock();
                let _ = write!(
                    err,
                    "\r\x1b[2K {} {name} ...",
                    SPINNER[frame % SPINNER.len()]
                );
                let _ = err.flush();
                drop(err);
                frame += 1;
                thread::sleep(Duration::from_millis(100));
            }
        });
        Spinner { done, handle }
    }

    fn stop(self) {
        self.done.store(true, Ordering::Relaxed);
        let _ = self.handle.join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer whose reader is gone, or whose disk is full.
    struct Failing(ErrorKind);

    impl Write for Failing {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(self.0.into())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_closed_reader_is_told_from_other_failures() {
        let mut out = Vec::new();
        assert_eq!(write_to(&mut out, format_args!("a {}\n", 1)), Written::Done);
        assert_eq!(out, b"a 1\n");
        let closed = write_to(&mut Failing(ErrorKind::BrokenPipe), format_args!("x"));
        assert_eq!(closed, Written::Closed);
        let full = write_to(&mut Failing(ErrorKind::StorageFull), format_args!("x"));
        assert_eq!(full, Written::Failed(ErrorKind::StorageFull));
    }

    #[test]
    fn elapsed_formats() {
        assert_eq!(format_elapsed(Duration::from_millis(1234)), "1.2s");
        assert_eq!(format_elapsed(Duration::from_secs(125)), "2m05s");
    }
}
