//! Plans: named steps with the commands they run, built first and then either
//! printed (`--dry-run`) or executed. Every subcommand that drives external
//! programs builds a `Plan`, so dry runs and golden tests come for free.
//!
//! Commands are built with xshell's `cmd!` (each `{x}` is exactly one argument;
//! no shell ever runs) and executed here so that their output can be streamed
//! with `-v` and its tail kept for the error message when they fail.
//!
//! Signals (Ctrl-C's SIGINT, SIGTERM, SIGHUP) stop a plan the same way: no
//! further main step starts, the running command is asked to stop (SIGINT,
//! then SIGTERM, then SIGKILL, a grace period apart), and the failure and
//! clean-up steps run. A second signal stops at once, without clean-up.

use std::collections::VecDeque;
use std::ffi::OsStr;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write as _};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::sys::signal::Signal;
use node_image::Redacted;
use xshell::Cmd;

use crate::ui::Ui;

/// How many lines of a failed command's output the error shows.
const TAIL_LINES: usize = 40;
/// At most this much of one line of that tail (a progress bar redrawn with
/// `\r`, or a JSON document on one line, can be megabytes)...
const TAIL_LINE_BYTES: usize = 4 * 1024;
/// ...and of the whole tail, so that an error stays readable.
const TAIL_BYTES: usize = 16 * 1024;
/// How long a command has, after a signal, to stop on SIGINT before it gets
/// SIGTERM, and then SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// How often the runner looks whether its command ended or a signal came.
const POLL: Duration = Duration::from_millis(20);

/// One external command of a step and where its standard input comes from.
/// Built with xshell's `cmd!`, kept as `std::process::Command` so it can be
/// both printed and run.
pub struct Invocation {
    command: Command,
    /// A file to read as standard input (printed as `< FILE`); none reads nothing.
    stdin: Option<PathBuf>,
    /// Environment variables whose values may hold a password (a proxy's).
    /// Kept out of `command` until it starts, so that nothing printed from
    /// it can show them; the line shows them through [`Redacted`].
    secret_env: Vec<(String, Redacted)>,
}

impl Invocation {
    /// The command with its standard input read from `file`.
    pub fn stdin_file(cmd: Cmd<'_>, file: impl Into<PathBuf>) -> Invocation {
        Invocation {
            stdin: Some(file.into()),
            ..Invocation::from(cmd)
        }
    }

    /// The command with `vars` in its environment when it runs. Printed
    /// redacted (`HTTPS_PROXY='http://alice:***@proxy:3128' docker build
    /// ...`): the line still says what runs, without the password.
    pub fn secret_env(mut self, vars: Vec<(String, Redacted)>) -> Invocation {
        self.secret_env.extend(vars);
        self
    }

    /// `K=V program args < FILE`: safe to paste into a POSIX shell (with
    /// the passwords of [`Invocation::secret_env`] to fill in).
    pub fn shell_line(&self) -> String {
        let line = shell_line(&self.command, &self.secret_env);
        match &self.stdin {
            Some(file) => format!("{line} < {}", quote(file.as_os_str())),
            None => line,
        }
    }

    /// The command to start, its secret variables set at last.
    fn into_command(self) -> Command {
        let mut command = self.command;
        command.envs(self.secret_env.iter().map(|(k, v)| (k, v.expose())));
        command
    }
}

impl From<Cmd<'_>> for Invocation {
    fn from(cmd: Cmd<'_>) -> Invocation {
        Invocation {
            command: cmd.into(),
            stdin: None,
            secret_env: Vec::new(),
        }
    }
}

/// What a step does.
pub enum Action<'a> {
    /// External commands, run in order; the first failure stops the plan.
    Commands(Vec<Invocation>),
    /// Work done in-process (HTTP calls, file generation), described for dry runs.
    Native {
        describe: String,
        run: Box<dyn FnOnce() -> Result<()> + 'a>,
    },
    /// A read-only check of `subject`: its command's stdout (or failure) goes
    /// to `judge`, whose answer is the detail shown under the status line or
    /// the problem. A failed check does not stop the checks after it; the
    /// plan stops before the first step that is not a check.
    Check {
        subject: String,
        cmd: Box<Invocation>,
        judge: Box<dyn FnOnce(Result<String>) -> Result<String> + 'a>,
    },
}

/// One named step of a plan.
pub struct Step<'a> {
    pub name: String,
    pub action: Action<'a>,
    /// Stream the commands' output even without `-v` (test runs, whose
    /// summary lines are the point).
    pub show_output: bool,
    /// Run only when this holds at the moment the step comes up.
    pub only_if: Option<Condition<'a>>,
    /// Called once, just before the action starts (to note that it started).
    pub on_start: Option<Box<dyn FnOnce() + 'a>>,
    /// For a check: a problem is only a warning, ending with this reason.
    pub warn_only: Option<String>,
}

/// When a step runs: `describe` completes "only if ..." in dry runs and in
/// the line that says the step was skipped.
pub struct Condition<'a> {
    pub describe: String,
    pub holds: Box<dyn Fn() -> bool + 'a>,
}

/// Which list of a plan new steps go to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Section {
    #[default]
    Main,
    OnFailure,
    Always,
}

/// An ordered list of steps, plus the steps that run when one of them fails
/// (collect logs) and those that always run last (remove temporary files).
#[derive(Default)]
pub struct Plan<'a> {
    steps: Vec<Step<'a>>,
    on_failure: Vec<Step<'a>>,
    always: Vec<Step<'a>>,
    section: Section,
    /// What a dry run could not look up, with what the plan assumes instead.
    unresolved: Vec<String>,
    /// After a signal, how long the running command has at each of SIGINT
    /// and SIGTERM before the next (tests shorten it).
    pub stop_grace: StopGrace,
}

/// The grace period between the signals that stop a running command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StopGrace(pub Duration);

impl Default for StopGrace {
    fn default() -> StopGrace {
        StopGrace(STOP_GRACE)
    }
}

impl std::fmt::Debug for Plan<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.render())
    }
}

impl<'a> Plan<'a> {
    pub fn new() -> Plan<'a> {
        Plan::default()
    }

    /// Steps added from now on run only if a main step failed (or was interrupted).
    pub fn on_failure(&mut self) -> &mut Self {
        self.section = Section::OnFailure;
        self
    }

    /// Steps added from now on run last, whatever happened before.
    pub fn always(&mut self) -> &mut Self {
        self.section = Section::Always;
        self
    }

    fn push(&mut self, step: Step<'a>) {
        match self.section {
            Section::Main => self.steps.push(step),
            Section::OnFailure => self.on_failure.push(step),
            Section::Always => self.always.push(step),
        }
    }

    fn current(&mut self) -> Option<&mut Step<'a>> {
        match self.section {
            Section::Main => self.steps.last_mut(),
            Section::OnFailure => self.on_failure.last_mut(),
            Section::Always => self.always.last_mut(),
        }
    }

    /// Adds a step that runs one command.
    pub fn cmd(&mut self, name: impl Into<String>, cmd: Cmd<'a>) -> &mut Self {
        self.cmds(name, vec![cmd])
    }

    /// Adds a step that runs several commands in order.
    pub fn cmds(&mut self, name: impl Into<String>, cmds: Vec<Cmd<'a>>) -> &mut Self {
        self.invocations(name, cmds.into_iter().map(Invocation::from).collect())
    }

    /// Adds a step that runs several commands in order, some perhaps with
    /// their standard input from a file.
    pub fn invocations(&mut self, name: impl Into<String>, cmds: Vec<Invocation>) -> &mut Self {
        self.push(Step::new(name.into(), Action::Commands(cmds)));
        self
    }

    /// Makes the last step added stream its commands' output.
    pub fn show_output(&mut self) -> &mut Self {
        if let Some(step) = self.current() {
            step.show_output = true;
        }
        self
    }

    /// Makes the last step added run only if `holds()` is true when its turn
    /// comes; otherwise it is skipped, saying so. `describe` completes "only
    /// if ..." in dry runs.
    pub fn only_if(
        &mut self,
        describe: impl Into<String>,
        holds: impl Fn() -> bool + 'a,
    ) -> &mut Self {
        if let Some(step) = self.current() {
            step.only_if = Some(Condition {
                describe: describe.into(),
                holds: Box::new(holds),
            });
        }
        self
    }

    /// Makes the last step added call `f` just before its action starts.
    pub fn on_start(&mut self, f: impl FnOnce() + 'a) -> &mut Self {
        if let Some(step) = self.current() {
            step.on_start = Some(Box::new(f));
        }
        self
    }

    /// Adds a check of `subject` (named "Checking SUBJECT"): `cmd` runs
    /// quietly and `judge` reads its stdout, or its failure.
    pub fn check(
        &mut self,
        subject: impl Into<String>,
        cmd: Cmd<'a>,
        judge: impl FnOnce(Result<String>) -> Result<String> + 'a,
    ) -> &mut Self {
        let subject = subject.into();
        self.push(Step::new(
            format!("Checking {subject}"),
            Action::Check {
                subject,
                cmd: Box::new(cmd.into()),
                judge: Box::new(judge),
            },
        ));
        self
    }

    /// Makes the last check added only warn about a problem, saying `why`.
    pub fn warn_only(&mut self, why: impl Into<String>) -> &mut Self {
        if let Some(step) = self.current() {
            step.warn_only = Some(why.into());
        }
        self
    }

    /// Records what a dry run could not look up (each with what the plan
    /// assumes instead); the rendered plan ends with them.
    pub fn unresolved(&mut self, unresolved: Vec<String>) -> &mut Self {
        self.unresolved.extend(unresolved);
        self
    }

    /// Adds an in-process step; `describe` is what a dry run prints for it.
    pub fn native(
        &mut self,
        name: impl Into<String>,
        describe: impl Into<String>,
        run: impl FnOnce() -> Result<()> + 'a,
    ) -> &mut Self {
        self.push(Step::new(
            name.into(),
            Action::Native {
                describe: describe.into(),
                run: Box::new(run),
            },
        ));
        self
    }

    /// The plan as a dry run prints it: numbered steps, each command
    /// shell-quoted so it can be pasted into a terminal.
    pub fn render(&self) -> String {
        let mut out = String::new();
        render_steps(&mut out, &self.steps, "");
        if !self.on_failure.is_empty() {
            out.push_str("If a step fails:\n");
            render_steps(&mut out, &self.on_failure, "F");
        }
        if !self.always.is_empty() {
            out.push_str("Always, last:\n");
            render_steps(&mut out, &self.always, "A");
        }
        if !self.unresolved.is_empty() {
            out.push_str("Not looked up (a real run does first):\n");
            for u in &self.unresolved {
                let _ = writeln!(out, "  - {u}");
            }
        }
        out
    }

    /// Runs every step in order under `ui`, stopping at the first failure;
    /// then, on failure, the failure steps; then always the final steps.
    /// The error names the step, and for commands the exact command line and
    /// the tail of its output. A signal (Ctrl-C, SIGTERM, SIGHUP) stops the
    /// running command and counts as a failure, so the cleanup still runs.
    pub fn execute(self, ui: &Ui) -> Result<()> {
        interrupt::install();
        let grace = self.stop_grace.0;
        let mut result = Ok(());
        // Checks that found a problem: the plan stops before the next step
        // that is not a check, so every check reports first.
        let mut problems: Vec<String> = Vec::new();
        for step in self.steps {
            let is_check = matches!(step.action, Action::Check { .. });
            if !is_check && !problems.is_empty() {
                break;
            }
            if let Action::Check { subject, .. } = &step.action
                && step.warn_only.is_none()
            {
                let subject = subject.clone();
                if run_step(ui, step, Some(grace)).is_err() {
                    if interrupt::happened() {
                        result = Err(anyhow::anyhow!(interrupt::MESSAGE));
                        break;
                    }
                    problems.push(subject);
                }
                continue;
            }
            if let Err(e) = run_step(ui, step, Some(grace)) {
                result = Err(if interrupt::happened() {
                    e.context(interrupt::MESSAGE)
                } else {
                    e
                });
                break;
            }
        }
        if !problems.is_empty() && result.is_ok() {
            result = Err(anyhow::anyhow!(
                "checks found problems: {}",
                problems.join(", ")
            ));
        }
        // After a failure or a signal these steps still run: they are the point.
        if result.is_err() {
            for step in self.on_failure {
                // Best effort: a failing log export must not hide the real error.
                if let Err(e) = run_step(ui, step, None) {
                    eprintln!("   (after the failure: {e:#})");
                }
            }
        }
        for step in self.always {
            if let Err(e) = run_step(ui, step, None) {
                eprintln!("   (cleanup: {e:#})");
                if result.is_ok() {
                    result = Err(e);
                }
            }
        }
        result
    }
}

impl<'a> Step<'a> {
    fn new(name: String, action: Action<'a>) -> Step<'a> {
        Step {
            name,
            action,
            show_output: false,
            only_if: None,
            on_start: None,
            warn_only: None,
        }
    }
}

fn render_steps(out: &mut String, steps: &[Step<'_>], prefix: &str) {
    for (i, step) in steps.iter().enumerate() {
        let _ = write!(out, "{prefix}{}. {}", i + 1, step.name);
        if let Some(condition) = &step.only_if {
            let _ = write!(out, " (only if {})", condition.describe);
        }
        out.push('\n');
        match &step.action {
            Action::Commands(cmds) => {
                for cmd in cmds {
                    let _ = writeln!(out, "   $ {}", cmd.shell_line());
                }
            }
            Action::Native { describe, .. } => {
                let _ = writeln!(out, "   ({describe})");
            }
            Action::Check { cmd, .. } => {
                let _ = writeln!(out, "   $ {}", cmd.shell_line());
                if let Some(why) = &step.warn_only {
                    let _ = writeln!(out, "   (a problem is only a warning: {why})");
                }
            }
        }
    }
}

/// Runs one step. `stop` is the grace period of a main step, which a signal
/// stops; none for the failure and cleanup steps, which must run after one.
fn run_step(ui: &Ui, step: Step<'_>, stop: Option<Duration>) -> Result<()> {
    let stop_on_interrupt = stop.is_some();
    let name = step.name;
    if let Some(condition) = &step.only_if
        && !(condition.holds)()
    {
        eprintln!(" - {name} (skipped: only if {})", condition.describe);
        return Ok(());
    }
    let on_start = step.on_start;
    let echo = match (step.show_output, ui.verbose) {
        (true, _) => Echo::Raw,
        (false, true) => Echo::Indented,
        (false, false) => Echo::Quiet,
    };
    // A streamed step prints its own lines: no spinner over them.
    let quiet_ui = Ui {
        verbose: ui.verbose || step.show_output,
        ..*ui
    };
    let subject = match &step.action {
        Action::Check { subject, .. } => Some(subject.clone()),
        _ => None,
    };
    let result = quiet_ui.step(&name, || {
        if stop_on_interrupt {
            interrupt::check()?;
        }
        if let Some(f) = on_start {
            f();
        }
        match step.action {
            Action::Commands(cmds) => {
                for cmd in cmds {
                    run(ui, cmd, echo, stop)?;
                    if stop_on_interrupt {
                        interrupt::check()?;
                    }
                }
                Ok(None)
            }
            Action::Native { run, .. } => run().map(|()| None),
            Action::Check { cmd, judge, .. } => {
                ui.detail(&format!("$ {}", cmd.shell_line()));
                judge(read_quietly(*cmd)).map(Some)
            }
        }
    });
    match (result, subject) {
        (Ok(detail), _) => {
            if let Some(detail) = detail {
                eprintln!("   {detail}");
            }
            Ok(())
        }
        // A check's problem is its report: shown under its status line.
        (Err(e), Some(subject)) => match step.warn_only {
            Some(why) => {
                eprintln!("   WARNING: {subject}: {e:#}; going on ({why})");
                Ok(())
            }
            // Shown here; `execute` counts it among the problems.
            None => {
                eprintln!("   {e:#}");
                Err(e)
            }
        },
        (Err(e), None) => Err(e.context(format!("step \"{name}\" failed"))),
    }
}

/// Signals: Ctrl-C (the terminal sends SIGINT to the whole process group, so
/// the running command gets it too), SIGTERM and SIGHUP (sent to this process
/// alone, by a CI runner or a closed terminal). The first is remembered: no
/// further main step starts, the runner stops its command, and the failure and
/// cleanup steps run. A second one means "now": exit at once.
mod interrupt {
    use std::io::Write as _;
    use std::sync::Once;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// What a plan stopped by a signal says.
    pub const MESSAGE: &str = "interrupted (Ctrl-C, SIGTERM or SIGHUP)";

    /// The exit status after a second signal: 128 + SIGINT, as shells report it.
    const EXIT_AT_ONCE: i32 = 130;

    static SIGNALS: AtomicUsize = AtomicUsize::new(0);

    pub fn install() {
        static ONCE: Once = Once::new();
        ONCE.call_once(|| {
            // A second handler cannot be installed (tests run plans in one
            // process); the first one serves every plan. ctrlc runs it on a
            // thread of its own, not in the signal handler, so it may write
            // and exit.
            let _ = ctrlc::set_handler(on_signal);
        });
    }

    fn on_signal() {
        if SIGNALS.fetch_add(1, Ordering::SeqCst) > 0 {
            let _ = writeln!(
                std::io::stderr().lock(),
                "ERROR: interrupted again: stopping at once, without the clean-up steps"
            );
            std::process::exit(EXIT_AT_ONCE);
        }
    }

    pub fn happened() -> bool {
        SIGNALS.load(Ordering::SeqCst) > 0
    }

    /// An error once a signal came, so no further main step starts (the
    /// plan adds [`MESSAGE`] to it).
    pub fn check() -> anyhow::Result<()> {
        if happened() {
            anyhow::bail!("stopped by the signal");
        }
        Ok(())
    }
}

/// `K=V program 'arg with space'`: safe to paste into a POSIX shell. The
/// variables of `secret_env` follow the command's own, each value shown as
/// [`Redacted`] shows it.
pub fn shell_line(command: &Command, secret_env: &[(String, Redacted)]) -> String {
    let mut words: Vec<String> = Vec::new();
    // Commands run from the project root, which is also our own directory;
    // only a different directory is worth printing.
    let here = std::env::current_dir().ok();
    if let Some(dir) = command.get_current_dir()
        && Some(dir) != here.as_deref()
    {
        words.push(format!("cd {} &&", quote(dir.as_os_str())));
    }
    for (k, v) in command.get_envs() {
        if let Some(v) = v {
            words.push(format!("{}={}", k.to_string_lossy(), quote(v)));
        }
    }
    for (k, v) in secret_env {
        words.push(format!("{k}={}", quote(OsStr::new(&v.to_string()))));
    }
    words.push(quote(command.get_program()));
    words.extend(command.get_args().map(quote));
    words.join(" ")
}

fn quote(s: &OsStr) -> String {
    let s = s.to_string_lossy();
    match shlex::try_quote(&s) {
        Ok(q) => q.into_owned(),
        // Only a NUL byte makes quoting fail; it cannot reach a command line anyway.
        Err(_) => format!("{s:?}"),
    }
}

/// How a running command's output reaches the terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Echo {
    /// Kept for the error message only.
    Quiet,
    /// Shown under the step, indented (`-v`).
    Indented,
    /// Shown as the command prints it (test runs, so their summaries read as usual).
    Raw,
}

/// Runs one command, echoing its output as asked and keeping the tail. With
/// `stop` (a main step), a signal stops the command: SIGINT, then SIGTERM and
/// SIGKILL, `stop` apart.
pub fn run(ui: &Ui, invocation: Invocation, echo: Echo, stop: Option<Duration>) -> Result<()> {
    let line = invocation.shell_line();
    ui.detail(&format!("$ {line}"));
    let stdin = match &invocation.stdin {
        Some(file) => Stdio::from(std::fs::File::open(file).with_context(|| {
            format!(
                "cannot open {} as the input of `{line}`: did an earlier step write it?",
                file.display()
            )
        })?),
        None => Stdio::null(),
    };
    let scrub = Scrub::of(&invocation.secret_env);
    let mut command = invocation.into_command();
    // One pipe for both streams keeps stdout and stderr lines in the order
    // the command wrote them, which is what a reader of the tail needs.
    let (reader, writer) = std::io::pipe().context("cannot create a pipe")?;
    let writer2 = writer.try_clone().context("cannot duplicate a pipe")?;
    let mut child = command
        .stdin(stdin)
        .stdout(writer)
        .stderr(writer2)
        .spawn()
        .with_context(|| {
            format!(
                "cannot start `{}`: is it installed and on PATH?\n  command: {line}",
                command.get_program().to_string_lossy()
            )
        })?;
    // The Command still holds the pipe's write ends; drop them so the reader sees EOF.
    drop(command);
    let tail = Arc::new(Mutex::new(Tail::default()));
    let (done, drained) = mpsc::channel();
    let collector = {
        let tail = Arc::clone(&tail);
        thread::spawn(move || {
            drain(BufReader::new(reader), echo, &tail, &scrub);
            let _ = done.send(());
        })
    };
    let status = wait(&mut child, stop).with_context(|| format!("waiting for `{line}`"))?;
    // A command stopped by a signal may leave a process behind that holds the
    // pipe open: its output is not worth waiting for long.
    match stop {
        Some(grace) if interrupt::happened() => {
            if drained.recv_timeout(grace).is_ok() {
                let _ = collector.join();
            }
        }
        _ => {
            let _ = collector.join();
        }
    }
    if status.success() {
        return Ok(());
    }
    let tail = tail.lock().unwrap_or_else(|p| p.into_inner());
    bail!("command failed ({status}):\n  {line}{}", tail.render())
}

/// Reads the command's output to its end, whatever its bytes: stopping
/// early would close the pipe, and the command would die of SIGPIPE. Read in
/// chunks, not lines, so a line of any length costs no more memory than the
/// tail keeps of it.
fn drain(mut reader: impl BufRead, echo: Echo, tail: &Mutex<Tail>, scrub: &Scrub) {
    let mut at_line_start = true;
    if !scrub.is_empty() {
        return drain_scrubbed(reader, echo, tail, scrub);
    }
    loop {
        let chunk = match reader.fill_buf() {
            Ok([]) => break,
            Ok(chunk) => chunk,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        echo.write(chunk, &mut at_line_start);
        tail.lock().unwrap_or_else(|p| p.into_inner()).push(chunk);
        let n = chunk.len();
        reader.consume(n);
    }
    tail.lock().unwrap_or_else(|p| p.into_inner()).finish();
}

/// Line by line, with the command's secret values hidden before anything
/// is shown or kept: a command that prints its proxy (`curl -v`, `env`)
/// must not put the password on the terminal or into the error. A line is
/// taken at most [`SCRUB_LINE_BYTES`] at a time, so memory stays bounded.
fn drain_scrubbed(mut reader: impl BufRead, echo: Echo, tail: &Mutex<Tail>, scrub: &Scrub) {
    let mut at_line_start = true;
    let mut line = Vec::new();
    loop {
        line.clear();
        let read =
            std::io::Read::take(&mut reader, SCRUB_LINE_BYTES as u64).read_until(b'\n', &mut line);
        match read {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
        let shown = scrub.apply(&line);
        echo.write(&shown, &mut at_line_start);
        tail.lock().unwrap_or_else(|p| p.into_inner()).push(&shown);
    }
    tail.lock().unwrap_or_else(|p| p.into_inner()).finish();
}

/// The most of one line [`drain_scrubbed`] holds at once.
const SCRUB_LINE_BYTES: usize = 64 * 1024;

/// The secret values of a command's environment, each with what is shown
/// instead: the whole value as [`Redacted`] shows it, and its password
/// alone (if it is long enough not to match ordinary words) as `***`.
#[derive(Debug, Default)]
struct Scrub(Vec<(Vec<u8>, Vec<u8>)>);

impl Scrub {
    fn of(secret_env: &[(String, Redacted)]) -> Scrub {
        let mut pairs = Vec::new();
        for (_, value) in secret_env {
            let (exposed, shown) = (value.expose(), value.to_string());
            if exposed == shown {
                continue;
            }
            pairs.push((exposed.as_bytes().to_vec(), shown.into_bytes()));
            if let Some(password) = password_of(exposed)
                && password.len() >= 4
            {
                pairs.push((password.as_bytes().to_vec(), b"***".to_vec()));
            }
        }
        Scrub(pairs)
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn apply(&self, line: &[u8]) -> Vec<u8> {
        let mut out = line.to_vec();
        for (secret, shown) in &self.0 {
            out = replace_all(&out, secret, shown);
        }
        out
    }
}

/// The password of `scheme://user:password@host...`.
fn password_of(url: &str) -> Option<&str> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let userinfo = &rest[..rest.rfind('@')?];
    Some(userinfo.split_once(':')?.1).filter(|p| !p.is_empty())
}

/// Every `needle` in `haystack` replaced (bytes: the output need not be
/// UTF-8). By hand: std has it only for `str`, and a crate (bstr) for this
/// one loop would be more to keep than the loop.
fn replace_all(haystack: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut rest = haystack;
    while let Some(at) = rest.windows(needle.len()).position(|w| w == needle) {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(with);
        rest = &rest[at + needle.len()..];
    }
    out.extend_from_slice(rest);
    out
}

impl Echo {
    /// Shows `chunk` of the output as asked. The output is the command's,
    /// bytes as it wrote them; a reader that went away (`| head`) is no
    /// reason to stop reading it, so write errors are dropped.
    fn write(self, chunk: &[u8], at_line_start: &mut bool) {
        match self {
            Echo::Quiet => {}
            Echo::Raw => {
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(chunk).and_then(|()| out.flush());
            }
            Echo::Indented => {
                let mut err = std::io::stderr().lock();
                for piece in chunk.split_inclusive(|&b| b == b'\n') {
                    if *at_line_start {
                        let _ = err.write_all("   │ ".as_bytes());
                    }
                    let _ = err.write_all(piece);
                    *at_line_start = piece.ends_with(b"\n");
                }
                let _ = err.flush();
            }
        }
    }
}

/// The end of a command's output that its error shows: the last
/// [`TAIL_LINES`] lines, each cut to [`TAIL_LINE_BYTES`], all together to
/// [`TAIL_BYTES`], saying what was cut. Bytes that are not UTF-8 are shown
/// as U+FFFD.
#[derive(Debug, Default)]
struct Tail {
    lines: VecDeque<String>,
    /// The bytes of `lines`.
    bytes: usize,
    /// Whole lines dropped for [`TAIL_BYTES`] (not for [`TAIL_LINES`]).
    dropped_for_bytes: bool,
    /// The line being read: its first bytes, and how many more it had.
    partial: Vec<u8>,
    partial_cut: usize,
}

impl Tail {
    fn push(&mut self, chunk: &[u8]) {
        let mut pieces = chunk.split(|&b| b == b'\n').peekable();
        while let Some(piece) = pieces.next() {
            self.extend(piece);
            // Every piece but the last ended at a newline.
            if pieces.peek().is_some() {
                self.end_line();
            }
        }
    }

    /// The output ended: an unterminated last line counts too.
    fn finish(&mut self) {
        if !self.partial.is_empty() || self.partial_cut > 0 {
            self.end_line();
        }
    }

    fn extend(&mut self, piece: &[u8]) {
        let room = TAIL_LINE_BYTES.saturating_sub(self.partial.len());
        let kept = room.min(piece.len());
        self.partial.extend_from_slice(&piece[..kept]);
        self.partial_cut += piece.len() - kept;
    }

    fn end_line(&mut self) {
        let bytes = self.partial.strip_suffix(b"\r").unwrap_or(&self.partial);
        let mut line = String::from_utf8_lossy(bytes).into_owned();
        if self.partial_cut > 0 {
            let _ = write!(line, " [{} more bytes cut]", self.partial_cut);
        }
        self.partial.clear();
        self.partial_cut = 0;
        self.bytes += line.len();
        self.lines.push_back(line);
        while self.lines.len() > TAIL_LINES {
            self.pop();
        }
        while self.bytes > TAIL_BYTES && self.lines.len() > 1 {
            self.pop();
            self.dropped_for_bytes = true;
        }
    }

    fn pop(&mut self) {
        if let Some(l) = self.lines.pop_front() {
            self.bytes -= l.len();
        }
    }

    /// The part of the error after the command line; empty for no output.
    fn render(&self) -> String {
        if self.lines.is_empty() {
            return String::new();
        }
        let mut msg = format!("\nlast {} lines of its output", self.lines.len());
        if self.dropped_for_bytes {
            let _ = write!(
                msg,
                " (earlier lines cut: at most {TAIL_BYTES} bytes are shown)"
            );
        }
        msg.push(':');
        for l in &self.lines {
            let _ = write!(msg, "\n  │ {l}");
        }
        msg
    }
}

/// Which signal stops a command `elapsed` after a signal reached this
/// process: SIGINT at once (SIGTERM or SIGHUP came to this process alone),
/// SIGTERM after `grace` (it ignores SIGINT), SIGKILL after twice that.
fn stop_signal(elapsed: Duration, grace: Duration) -> Signal {
    if elapsed < grace {
        Signal::SIGINT
    } else if elapsed < grace * 2 {
        Signal::SIGTERM
    } else {
        Signal::SIGKILL
    }
}

/// Waits for `child`; with `stop`, a signal to this process stops it.
fn wait(child: &mut Child, stop: Option<Duration>) -> std::io::Result<ExitStatus> {
    let Some(grace) = stop else {
        return child.wait();
    };
    let mut signalled: Option<(Instant, Signal)> = None;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if interrupt::happened() {
            let since = signalled.map_or_else(Instant::now, |(t, _)| t);
            let due = stop_signal(since.elapsed(), grace);
            if signalled.is_none_or(|(_, sent)| sent != due) {
                send(child, due);
                signalled = Some((since, due));
            }
        }
        thread::sleep(POLL);
    }
}

/// Sends `signal` to `child`, which may have exited meanwhile (then nothing
/// is left to stop, so errors are dropped).
fn send(child: &mut Child, signal: Signal) {
    if signal == Signal::SIGKILL {
        let _ = child.kill();
    } else if let Ok(pid) = i32::try_from(child.id()) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal);
    }
}

/// Runs a check's command quietly: its stdout on success, its stderr in the error.
fn read_quietly(invocation: Invocation) -> Result<String> {
    let shown = invocation.shell_line();
    let mut command = invocation.into_command();
    let out = command
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run `{shown}`"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        bail!(
            "`{shown}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xshell::{Shell, cmd};

    fn quiet() -> Ui {
        Ui {
            verbose: false,
            tty: false,
            color: false,
        }
    }

    #[test]
    fn renders_pasteable_commands() {
        let sh = Shell::new().unwrap();
        let tag = "it's here";
        let mut plan = Plan::new();
        plan.cmd(
            "Build",
            cmd!(sh, "docker build -t {tag} .").env("DOCKER_BUILDKIT", "1"),
        )
        .native("Check", "GET https://example/v2/", || Ok(()));
        assert_eq!(
            plan.render(),
            "1. Build\n   $ DOCKER_BUILDKIT=1 docker build -t \"it's here\" .\n2. Check\n   (GET https://example/v2/)\n"
        );
    }

    /// A secret variable reaches the command, and every line that names
    /// the command (the plan, `-v`, the failure) shows it redacted.
    #[test]
    fn secret_env_reaches_the_command_and_shows_redacted() {
        let dir = testkit::TempDir::new("step-secret-env");
        let proxy = "http://alice:s3cret@proxy:3128";
        let want = dir.path().join("want");
        std::fs::write(&want, proxy).unwrap();
        let sh = Shell::new().unwrap();
        // Exit 3 when the variable holds the real value, 9 otherwise.
        let script = "test \"$HTTPS_PROXY\" = \"$(cat \"$1\")\" || exit 9; exit 3";
        let mut plan = Plan::new();
        plan.invocations(
            "Build",
            vec![
                Invocation::from(cmd!(sh, "sh -c {script} sh {want}").env("LANG", "C"))
                    .secret_env(vec![("HTTPS_PROXY".to_owned(), Redacted::new(proxy))]),
            ],
        );
        let line = format!(
            "LANG=C HTTPS_PROXY='http://alice:***@proxy:3128' sh -c {} sh {}",
            quote(OsStr::new(script)),
            quote(want.as_os_str())
        );
        assert_eq!(plan.render(), format!("1. Build\n   $ {line}\n"));
        let err = format!("{:#}", plan.execute(&quiet()).unwrap_err());
        assert_eq!(
            err,
            format!("step \"Build\" failed: command failed (exit status: 3):\n  {line}")
        );
    }

    #[test]
    fn failure_names_command_and_tail() {
        let sh = Shell::new().unwrap();
        let mut plan = Plan::new();
        plan.cmd(
            "Fail",
            cmd!(
                sh,
                "sh -c 'for i in $(seq 1 50); do echo line$i; done; echo oops >&2; exit 3'"
            ),
        );
        let err = format!("{:#}", plan.execute(&quiet()).unwrap_err());
        assert!(
            err.starts_with("step \"Fail\" failed: command failed (exit status: 3):"),
            "{err}"
        );
        assert!(
            err.contains("sh -c 'for i in $(seq 1 50); do echo line"),
            "{err}"
        );
        assert!(err.contains("│ oops"), "{err}");
        assert!(!err.contains("│ line10\n"), "only the tail is kept: {err}");
        assert!(err.contains("│ line50"), "{err}");
    }

    #[test]
    fn failure_steps_run_only_after_a_failure_and_cleanup_always() {
        let log = std::cell::RefCell::new(Vec::new());
        let build = |fail: bool| {
            let log = &log;
            let mut plan = Plan::new();
            plan.native("main", "m", move || {
                log.borrow_mut().push("main");
                if fail { anyhow::bail!("boom") } else { Ok(()) }
            });
            plan.native("after main", "n", move || {
                log.borrow_mut().push("after main");
                Ok(())
            });
            plan.on_failure().native("logs", "l", move || {
                log.borrow_mut().push("logs");
                anyhow::bail!("log export failed too")
            });
            plan.always().native("cleanup", "c", move || {
                log.borrow_mut().push("cleanup");
                Ok(())
            });
            plan
        };
        assert_eq!(
            build(true).render(),
            "1. main\n   (m)\n2. after main\n   (n)\nIf a step fails:\nF1. logs\n   (l)\nAlways, last:\nA1. cleanup\n   (c)\n"
        );
        let err = format!("{:#}", build(true).execute(&quiet()).unwrap_err());
        // The original error wins over the failing log export.
        assert_eq!(err, "step \"main\" failed: boom");
        assert_eq!(*log.borrow(), ["main", "logs", "cleanup"]);
        log.borrow_mut().clear();
        build(false).execute(&quiet()).unwrap();
        assert_eq!(*log.borrow(), ["main", "after main", "cleanup"]);
    }

    /// Every check reports, then the plan stops before the first step that
    /// is not a check; a warn-only check never stops it.
    #[test]
    fn checks_all_report_then_stop_the_plan() {
        let sh = Shell::new().unwrap();
        let seen = std::cell::RefCell::new(Vec::new());
        let build = |warn_only: bool| {
            let seen = &seen;
            let mut plan = Plan::new();
            plan.check("a", cmd!(sh, "false"), move |out| {
                seen.borrow_mut().push("a");
                out.map(|_| "fine".to_owned())
            });
            if warn_only {
                plan.warn_only("--ignore");
            }
            plan.check("b", cmd!(sh, "echo b-out"), move |out| {
                seen.borrow_mut().push("b");
                assert_eq!(out.as_deref().ok(), Some("b-out"));
                Ok("b is fine".to_owned())
            });
            plan.native("after", "n", move || {
                seen.borrow_mut().push("after");
                Ok(())
            });
            plan
        };
        assert_eq!(
            build(true).render(),
            "1. Checking a\n   $ false\n   (a problem is only a warning: --ignore)\n\
             2. Checking b\n   $ echo b-out\n3. after\n   (n)\n"
        );
        let err = format!("{:#}", build(false).execute(&quiet()).unwrap_err());
        assert_eq!(err, "checks found problems: a");
        assert_eq!(*seen.borrow(), ["a", "b"]);
        seen.borrow_mut().clear();
        build(true).execute(&quiet()).unwrap();
        assert_eq!(*seen.borrow(), ["a", "b", "after"]);
    }

    #[test]
    fn stops_at_first_failure_and_reports_missing_programs() {
        let sh = Shell::new().unwrap();
        let ran = std::cell::Cell::new(false);
        let mut plan = Plan::new();
        plan.cmd("Missing", cmd!(sh, "kind-crio-no-such-program --x"))
            .native("After", "never", || {
                ran.set(true);
                Ok(())
            });
        let err = format!("{:#}", plan.execute(&quiet()).unwrap_err());
        assert!(
            err.contains("cannot start `kind-crio-no-such-program`"),
            "{err}"
        );
        assert!(!ran.get());
    }

    #[test]
    fn conditional_steps_render_their_condition_and_are_skipped_unless_it_holds() {
        let started = std::cell::Cell::new(false);
        let ran = std::cell::RefCell::new(Vec::new());
        let mut plan = Plan::new();
        plan.native("Check", "c", || {
            ran.borrow_mut().push("check");
            Ok(())
        })
        .native("Create", "make it", || {
            ran.borrow_mut().push("create");
            anyhow::bail!("half made")
        })
        .on_start(|| started.set(true));
        plan.always()
            .native("Delete", "d", || {
                ran.borrow_mut().push("delete");
                Ok(())
            })
            .only_if("this run started creating it", || started.get());
        assert_eq!(
            plan.render(),
            "1. Check\n   (c)\n2. Create\n   (make it)\nAlways, last:\nA1. Delete (only if this run started creating it)\n   (d)\n"
        );
        assert!(plan.execute(&quiet()).is_err());
        assert_eq!(*ran.borrow(), ["check", "create", "delete"]);

        // A failure before the marked step: the conditional step is skipped.
        let started = std::cell::Cell::new(false);
        ran.borrow_mut().clear();
        let mut plan = Plan::new();
        plan.native("Check", "c", || {
            ran.borrow_mut().push("check");
            anyhow::bail!("exists already")
        })
        .native("Create", "make it", || {
            ran.borrow_mut().push("create");
            Ok(())
        })
        .on_start(|| started.set(true));
        plan.always()
            .native("Delete", "d", || {
                ran.borrow_mut().push("delete");
                Ok(())
            })
            .only_if("this run started creating it", || started.get());
        let err = format!("{:#}", plan.execute(&quiet()).unwrap_err());
        assert_eq!(err, "step \"Check\" failed: exists already");
        assert_eq!(*ran.borrow(), ["check"]);
        assert!(!started.get());
    }

    /// A byte that is not UTF-8 does not end the reading: the command's
    /// output is drained to its end (else it dies of SIGPIPE), and the tail
    /// shows the byte as U+FFFD.
    /// A command that prints its secret environment (`env`, `curl -v`)
    /// shows neither the value nor its password, on the terminal or in the
    /// error; the command still gets the real value.
    #[test]
    fn a_command_printing_its_proxy_shows_no_password() {
        let sh = Shell::new().unwrap();
        let proxy = "http://alice:s3cret-pw@proxy.example:3128";
        let mut plan = Plan::new();
        plan.invocations(
            "Printing",
            vec![
                Invocation::from(cmd!(
                    sh,
                    "sh -c 'echo \"via $HTTPS_PROXY\"; echo \"pw=${HTTPS_PROXY#*alice:}\"; exit 3'"
                ))
                .secret_env(vec![("HTTPS_PROXY".to_owned(), Redacted::new(proxy))]),
            ],
        );
        let err = format!("{:#}", plan.execute(&quiet()).unwrap_err());
        assert!(!err.contains("s3cret-pw"), "{err}");
        assert!(
            err.contains("via http://alice:***@proxy.example:3128"),
            "{err}"
        );
        assert!(err.contains("pw=***@proxy.example:3128"), "{err}");
    }

    #[test]
    fn output_that_is_not_utf8_is_read_to_its_end() {
        let sh = Shell::new().unwrap();
        let mut plan = Plan::new();
        plan.cmd(
            "Engine",
            cmd!(sh, "sh -c 'printf \"abc\\377\\n\"; seq 20000'"),
        );
        plan.execute(&quiet()).expect("the command succeeds");

        let mut plan = Plan::new();
        plan.cmd(
            "Engine",
            cmd!(sh, "sh -c 'printf \"abc\\377\\n\"; seq 20000; exit 3'"),
        );
        let err = format!("{:#}", plan.execute(&quiet()).unwrap_err());
        assert!(err.contains("exit status: 3"), "{err}");
        assert!(err.contains("│ 20000"), "read to the end: {err}");

        let mut plan = Plan::new();
        plan.cmd("Engine", cmd!(sh, "sh -c 'printf \"abc\\377\\n\"; exit 3'"));
        let err = format!("{:#}", plan.execute(&quiet()).unwrap_err());
        assert!(err.contains("│ abc\u{fffd}"), "{err}");
    }

    /// A 50 MB line becomes a few KiB of error, saying what was cut.
    #[test]
    fn the_tail_is_bounded_in_bytes() {
        let sh = Shell::new().unwrap();
        let mut plan = Plan::new();
        plan.cmd(
            "Engine",
            cmd!(
                sh,
                "sh -c 'head -c 50000000 /dev/zero | tr \"\\000\" x; echo; echo the end; exit 1'"
            ),
        );
        let err = format!("{:#}", plan.execute(&quiet()).unwrap_err());
        assert!(err.len() < TAIL_LINE_BYTES + 1024, "{} bytes", err.len());
        let cut = 50_000_000 - TAIL_LINE_BYTES;
        assert!(
            err.contains(&format!("x [{cut} more bytes cut]\n")),
            "{err:.300}"
        );
        assert!(err.ends_with("│ the end"), "{err:.300}");
    }

    #[test]
    fn tail_keeps_lines_and_bytes_within_bounds() {
        let check = |chunks: &[&[u8]], expect: &str| {
            let mut tail = Tail::default();
            for c in chunks {
                tail.push(c);
            }
            tail.finish();
            assert_eq!(tail.render(), expect);
        };
        check(&[], "");
        // Lines split across chunks, CRLF, an unterminated last line.
        check(
            &[b"one\r\ntw", b"o\n", b"thr", b"ee"],
            "\nlast 3 lines of its output:\n  │ one\n  │ two\n  │ three",
        );
        // The last TAIL_LINES lines only.
        let many: String = (1..=100).map(|i| format!("{i}\n")).collect();
        let mut tail = Tail::default();
        tail.push(many.as_bytes());
        tail.finish();
        assert_eq!(tail.lines.len(), TAIL_LINES);
        assert_eq!(tail.lines[0], "61");
        assert!(!tail.dropped_for_bytes);
        // Long lines: each cut, and only as many as fit in TAIL_BYTES.
        let long = vec![b'y'; TAIL_LINE_BYTES + 10];
        let mut tail = Tail::default();
        for _ in 0..10 {
            tail.push(&long);
            tail.push(b"\n");
        }
        tail.finish();
        assert!(tail.bytes <= TAIL_BYTES, "{}", tail.bytes);
        assert_eq!(tail.lines.len(), TAIL_BYTES / (TAIL_LINE_BYTES + 20));
        assert!(
            tail.lines
                .iter()
                .all(|l| l.ends_with("y [10 more bytes cut]"))
        );
        assert!(tail.render().starts_with(&format!(
            "\nlast 3 lines of its output (earlier lines cut: at most {TAIL_BYTES} bytes are shown):"
        )));
        // A line longer than TAIL_BYTES on its own is still shown, cut.
        let mut tail = Tail::default();
        tail.push(&vec![b'z'; 10 * TAIL_BYTES]);
        tail.finish();
        assert_eq!(tail.lines.len(), 1);
    }

    #[test]
    fn a_running_command_is_stopped_step_by_step() {
        let g = Duration::from_secs(5);
        assert_eq!(stop_signal(Duration::ZERO, g), Signal::SIGINT);
        assert_eq!(stop_signal(Duration::from_secs(4), g), Signal::SIGINT);
        assert_eq!(stop_signal(g, g), Signal::SIGTERM);
        assert_eq!(stop_signal(Duration::from_secs(9), g), Signal::SIGTERM);
        assert_eq!(stop_signal(2 * g, g), Signal::SIGKILL);
    }

    /// Signals need a process of their own: a handler is process-wide and a
    /// second signal exits. So each case runs `signal_child` below in a new
    /// run of this test binary, which the parent signals.
    mod signals {
        use super::*;
        use std::os::unix::process::CommandExt as _;
        use std::path::Path;

        /// Set for the run of the test binary that plays the signalled process.
        const CASE: &str = "KIND_CRIO_TEST_SIGNAL_CASE";
        const DIR: &str = "KIND_CRIO_TEST_SIGNAL_DIR";

        /// An engine stand-in for each case: it says it started, then runs
        /// until stopped.
        fn engine(case: &str) -> &'static str {
            match case {
                // Stops on SIGINT, and says it succeeded.
                "traps-int" => "trap 'exit 0' INT",
                // Stops only on SIGTERM.
                "ignores-int" => "trap '' INT",
                // Stops only on SIGKILL.
                "ignores-int-and-term" => "trap '' INT TERM",
                other => panic!("no case {other}"),
            }
        }

        /// The plan of a build: the engine, then a push; logs on failure,
        /// then the clean-up. Each step leaves a file in `dir` when it runs.
        /// `slow_cleanup` makes the clean-up take its time.
        fn plan<'a>(sh: &'a Shell, dir: &'a Path, case: &str, slow_cleanup: bool) -> Plan<'a> {
            let script = format!(
                "{}; touch '{}'; while :; do sleep 0.05; done",
                engine(case),
                dir.join("started").display()
            );
            let mark = move |name: &'static str| {
                move || {
                    std::fs::write(dir.join(name), name)?;
                    Ok(())
                }
            };
            let mut plan = Plan::new();
            plan.stop_grace = StopGrace(Duration::from_millis(300));
            plan.cmd("Building", cmd!(sh, "sh -c {script}")).native(
                "Pushing",
                "push",
                mark("pushed"),
            );
            plan.on_failure()
                .native("Collecting logs", "logs", mark("logs"));
            plan.always()
                .native("Removing the working directory", "rm", move || {
                    std::fs::write(dir.join("cleanup-started"), "")?;
                    if slow_cleanup {
                        thread::sleep(Duration::from_secs(20));
                    }
                    std::fs::write(dir.join("cleaned"), "")?;
                    Ok(())
                });
            plan
        }

        /// Not a test of its own: the signalled process of the tests below,
        /// doing nothing unless they started it.
        #[test]
        fn signal_child() {
            let (Some(case), Some(dir)) = (std::env::var_os(CASE), std::env::var_os(DIR)) else {
                return;
            };
            let case = case.to_string_lossy().into_owned();
            let dir = PathBuf::from(dir);
            let (case, slow) = match case.strip_suffix("+slow-cleanup") {
                Some(c) => (c.to_owned(), true),
                None => (case, false),
            };
            let sh = Shell::new().unwrap();
            let result = plan(&sh, &dir, &case, slow).execute(&quiet());
            let text = match result {
                Ok(()) => "ok".to_owned(),
                Err(e) => format!("{e:#}"),
            };
            std::fs::write(dir.join("result"), text).unwrap();
        }

        /// What a signalled run left.
        struct Outcome {
            dir: testkit::TempDir,
            status: std::process::ExitStatus,
            elapsed: Duration,
        }

        impl Outcome {
            fn has(&self, file: &str) -> bool {
                self.dir.path().join(file).exists()
            }
            fn result(&self) -> String {
                std::fs::read_to_string(self.dir.path().join("result")).unwrap_or_default()
            }
        }

        fn wait_for(path: &Path, child: &mut std::process::Child) {
            let deadline = Instant::now() + Duration::from_secs(30);
            while !path.exists() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!(
                        "the signalled run ended ({status}) before {}",
                        path.display()
                    );
                }
                assert!(Instant::now() < deadline, "no {}", path.display());
                thread::sleep(Duration::from_millis(10));
            }
        }

        /// Runs `case` in a process of its own, sends `signals` once the
        /// engine (or, for the second signal, the clean-up) started, and
        /// waits, for at most 30 s, for it to end. SIGINT goes to the
        /// process group, as a terminal sends it; the others to the process.
        fn signalled(case: &str, signals: &[Signal]) -> Outcome {
            let dir = testkit::TempDir::new(&format!("step-signal-{case}"));
            let mut child = Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "step::tests::signals::signal_child",
                    "--test-threads=1",
                ])
                .env(CASE, case)
                .env(DIR, dir.path())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
                .unwrap();
            let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
            let started = Instant::now();
            for (i, &signal) in signals.iter().enumerate() {
                let cue = if i == 0 { "started" } else { "cleanup-started" };
                wait_for(&dir.path().join(cue), &mut child);
                if signal == Signal::SIGINT {
                    nix::sys::signal::killpg(pid, signal).unwrap();
                } else {
                    nix::sys::signal::kill(pid, signal).unwrap();
                }
            }
            let deadline = started + Duration::from_secs(30);
            let status = loop {
                if let Some(status) = child.try_wait().unwrap() {
                    break status;
                }
                if Instant::now() > deadline {
                    let _ = nix::sys::signal::killpg(pid, Signal::SIGKILL);
                    panic!("the signalled run of {case} did not end");
                }
                thread::sleep(Duration::from_millis(10));
            };
            Outcome {
                dir,
                status,
                elapsed: started.elapsed(),
            }
        }

        /// Whatever the signal, the push never runs, and the failure and
        /// clean-up steps do, even when the engine exits 0 on SIGINT.
        #[test]
        fn a_signal_runs_the_cleanup_and_pushes_nothing() {
            for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
                let out = signalled("traps-int", &[signal]);
                assert!(out.status.success(), "{signal}: {}", out.status);
                assert!(!out.has("pushed"), "{signal}: pushed after the signal");
                assert!(out.has("logs") && out.has("cleaned"), "{signal}");
                assert_eq!(
                    out.result(),
                    "interrupted (Ctrl-C, SIGTERM or SIGHUP): step \"Building\" failed: stopped by the signal",
                    "{signal}"
                );
            }
        }

        /// An engine that ignores SIGINT gets SIGTERM after the grace
        /// period; one that ignores SIGTERM too, SIGKILL after another.
        #[test]
        fn an_engine_that_ignores_sigint_is_stopped_all_the_same() {
            for (case, how) in [
                ("ignores-int", "signal: 15 (SIGTERM)"),
                ("ignores-int-and-term", "signal: 9 (SIGKILL)"),
            ] {
                let out = signalled(case, &[Signal::SIGTERM]);
                assert!(out.status.success(), "{case}: {}", out.status);
                let result = out.result();
                assert!(
                    result.starts_with("interrupted (Ctrl-C, SIGTERM or SIGHUP): step \"Building\" failed: command failed (")
                        && result.contains(how),
                    "{case}: {result}"
                );
                assert!(!out.has("pushed") && out.has("cleaned"), "{case}");
                assert!(
                    out.elapsed < Duration::from_secs(15),
                    "{case}: {:?}",
                    out.elapsed
                );
            }
        }

        /// A second signal during the clean-up stops at once.
        #[test]
        fn a_second_signal_stops_at_once() {
            let out = signalled(
                "traps-int+slow-cleanup",
                &[Signal::SIGTERM, Signal::SIGTERM],
            );
            assert_eq!(out.status.code(), Some(130), "{}", out.status);
            assert!(out.has("cleanup-started") && !out.has("cleaned"));
            assert!(!out.has("pushed") && !out.has("result"));
            assert!(out.elapsed < Duration::from_secs(15), "{:?}", out.elapsed);
        }
    }

    #[test]
    fn stdin_from_a_file_is_printed_and_fed() {
        let dir = testkit::TempDir::new("step-stdin");
        let file = dir.path().join("archive 1.tar");
        std::fs::write(&file, "the archive's bytes\n").unwrap();
        let sh = Shell::new().unwrap();
        let mut plan = Plan::new();
        // `cmp FILE -` succeeds only when its standard input is FILE's content.
        plan.invocations(
            "Compare",
            vec![Invocation::stdin_file(cmd!(sh, "cmp {file} -"), &file)],
        );
        let shown = file.display().to_string();
        assert_eq!(
            plan.render(),
            format!("1. Compare\n   $ cmp '{shown}' - < '{shown}'\n")
        );
        plan.execute(&quiet()).unwrap();

        // Without a file, standard input is empty: the same comparison fails.
        let mut plan = Plan::new();
        plan.cmd("Compare", cmd!(sh, "cmp {file} -"));
        assert!(plan.execute(&quiet()).is_err());

        let missing = dir.path().join("missing.tar");
        let mut plan = Plan::new();
        plan.invocations(
            "Compare",
            vec![Invocation::stdin_file(cmd!(sh, "cmp {file} -"), &missing)],
        );
        let err = format!("{:#}", plan.execute(&quiet()).unwrap_err());
        assert!(
            err.contains(&format!(
                "cannot open {} as the input of `cmp",
                missing.display()
            )),
            "{err}"
        );
    }
}
