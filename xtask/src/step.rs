//! Plans: named steps with the commands they run, built first and then either
//! printed (`--dry-run`) or executed. Every subcommand that drives external
//! programs builds a `Plan`, so dry runs and golden tests come for free.
//!
//! Commands are built with xshell's `cmd!` (each `{x}` is exactly one argument;
//! no shell ever runs) and executed here so that their output can be streamed
//! with `-v` and its tail kept for the error message when they fail.

use std::collections::VecDeque;
use std::ffi::OsStr;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;

use anyhow::{Context, Result, bail};
use xshell::Cmd;

use crate::ui::Ui;

/// How many lines of a failed command's output the error shows.
const TAIL_LINES: usize = 40;

/// One external command of a step and where its standard input comes from.
/// Built with xshell's `cmd!`, kept as `std::process::Command` so it can be
/// both printed and run.
pub struct Invocation {
    command: Command,
    /// A file to read as standard input (printed as `< FILE`); none reads nothing.
    stdin: Option<PathBuf>,
}

impl Invocation {
    /// The command with its standard input read from `file`.
    pub fn stdin_file(cmd: Cmd<'_>, file: impl Into<PathBuf>) -> Invocation {
        Invocation {
            command: cmd.into(),
            stdin: Some(file.into()),
        }
    }

    /// `K=V program args < FILE`: safe to paste into a POSIX shell.
    pub fn shell_line(&self) -> String {
        let line = shell_line(&self.command);
        match &self.stdin {
            Some(file) => format!("{line} < {}", quote(file.as_os_str())),
            None => line,
        }
    }
}

impl From<Cmd<'_>> for Invocation {
    fn from(cmd: Cmd<'_>) -> Invocation {
        Invocation {
            command: cmd.into(),
            stdin: None,
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
    /// the tail of its output. Ctrl-C stops the running command and counts as
    /// a failure, so the cleanup still runs.
    pub fn execute(self, ui: &Ui) -> Result<()> {
        interrupt::install();
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
                if run_step(ui, step, true).is_err() {
                    if interrupt::happened() {
                        result = Err(anyhow::anyhow!("interrupted (Ctrl-C)"));
                        break;
                    }
                    problems.push(subject);
                }
                continue;
            }
            if let Err(e) = run_step(ui, step, true) {
                result = Err(if interrupt::happened() {
                    e.context("interrupted (Ctrl-C)")
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
        // After a failure or Ctrl-C these steps still run: they are the point.
        if result.is_err() {
            for step in self.on_failure {
                // Best effort: a failing log export must not hide the real error.
                if let Err(e) = run_step(ui, step, false) {
                    eprintln!("   (after the failure: {e:#})");
                }
            }
        }
        for step in self.always {
            if let Err(e) = run_step(ui, step, false) {
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

/// Runs one step; `stop_on_interrupt` is false for the failure and cleanup
/// steps, which must run after a Ctrl-C.
fn run_step(ui: &Ui, step: Step<'_>, stop_on_interrupt: bool) -> Result<()> {
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
                    run(ui, cmd, echo)?;
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
            None => {
                eprintln!("   {e:#}");
                Err(e.context(format!("the check of {subject} found a problem")))
            }
        },
        (Err(e), None) => Err(e.context(format!("step \"{name}\" failed"))),
    }
}

/// Ctrl-C: the terminal sends SIGINT to the whole process group, so the
/// running command stops by itself; we only remember it happened, stop
/// starting new main steps, and let the cleanup steps run.
mod interrupt {
    use std::sync::Once;
    use std::sync::atomic::{AtomicBool, Ordering};

    static INTERRUPTED: AtomicBool = AtomicBool::new(false);

    pub fn install() {
        static ONCE: Once = Once::new();
        ONCE.call_once(|| {
            // A second handler cannot be installed (tests run plans in one
            // process); the first one serves every plan.
            let _ = ctrlc::set_handler(|| INTERRUPTED.store(true, Ordering::SeqCst));
        });
    }

    pub fn happened() -> bool {
        INTERRUPTED.load(Ordering::SeqCst)
    }

    /// An error once Ctrl-C was pressed, so no further main step starts.
    pub fn check() -> anyhow::Result<()> {
        if happened() {
            anyhow::bail!("interrupted (Ctrl-C)");
        }
        Ok(())
    }
}

/// `K=V program 'arg with space'`: safe to paste into a POSIX shell.
pub fn shell_line(command: &Command) -> String {
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

/// Runs one command, echoing its output as asked and keeping the tail.
pub fn run(ui: &Ui, invocation: Invocation, echo: Echo) -> Result<()> {
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
    let mut command = invocation.command;
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
    let tail = Arc::new(Mutex::new(VecDeque::with_capacity(TAIL_LINES)));
    let collector = {
        let tail = Arc::clone(&tail);
        thread::spawn(move || {
            for line in BufReader::new(reader).lines() {
                let Ok(line) = line else { break };
                match echo {
                    Echo::Quiet => {}
                    Echo::Indented => eprintln!("   │ {line}"),
                    Echo::Raw => println!("{line}"),
                }
                let mut t = tail.lock().unwrap_or_else(|p| p.into_inner());
                if t.len() == TAIL_LINES {
                    t.pop_front();
                }
                t.push_back(line);
            }
        })
    };
    let status = child
        .wait()
        .with_context(|| format!("waiting for `{line}`"))?;
    let _ = collector.join();
    if status.success() {
        return Ok(());
    }
    let tail = tail.lock().unwrap_or_else(|p| p.into_inner());
    let mut msg = format!("command failed ({status}):\n  {line}");
    if !tail.is_empty() {
        let _ = write!(msg, "\nlast {} lines of its output:", tail.len());
        for l in tail.iter() {
            let _ = write!(msg, "\n  │ {l}");
        }
    }
    bail!(msg)
}

/// Runs a check's command quietly: its stdout on success, its stderr in the error.
fn read_quietly(invocation: Invocation) -> Result<String> {
    let shown = invocation.shell_line();
    let mut command = invocation.command;
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
