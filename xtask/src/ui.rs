//! Status lines in kind's style, on stderr so stdout stays data:
//! ` • Step ...` while it runs, then ` ✓ Step (1.2s)` or ` ✗ Step (1.2s)`.
//! On a terminal the bullet spins and the line is rewritten in place;
//! elsewhere (CI logs, pipes) each state is a plain line. `NO_COLOR` is honoured.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

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

    #[test]
    fn elapsed_formats() {
        assert_eq!(format_elapsed(Duration::from_millis(1234)), "1.2s");
        assert_eq!(format_elapsed(Duration::from_secs(125)), "2m05s");
    }
}
