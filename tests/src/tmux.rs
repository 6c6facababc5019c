//! A real terminal for tests of interactive commands: a tmux server of this
//! test process (its own socket, so no user's or other test's tmux is
//! touched) running one command in a detached session of a fixed size;
//! keys are sent as a person types them and the pane is read back as
//! text. The server is killed on drop, also when the test fails.

use std::{
    process::{Command, Output},
    thread,
    time::{Duration, Instant},
};

/// One tmux session running a command.
pub struct Tmux {
    socket: String,
    session: String,
}

impl Tmux {
    /// Starts `command` (a shell command line) in a `width`×`height`
    /// session with `env` set.
    pub fn start(name: &str, command: &str, env: &[(&str, &str)], width: u16, height: u16) -> Tmux {
        let t = Tmux {
            socket: format!("eunomia-test-{name}-{}", std::process::id()),
            session: name.to_owned(),
        };
        let mut cmd = t.tmux();
        cmd.args(["new-session", "-d", "-s", name, "-x"])
            .arg(width.to_string())
            .arg("-y")
            .arg(height.to_string());
        for (k, v) in env {
            cmd.arg("-e").arg(format!("{k}={v}"));
        }
        cmd.arg(command);
        let out = cmd.output().expect("run tmux");
        assert!(out.status.success(), "tmux new-session: {}", text(&out));
        t
    }

    fn tmux(&self) -> Command {
        let mut cmd = Command::new("tmux");
        cmd.args(["-L", &self.socket, "-f", "/dev/null"]);
        cmd
    }

    /// Sends keys as tmux names them (`q`, `Enter`, `Escape`, `C-c`, `<`).
    pub fn keys(&self, keys: &[&str]) {
        let out = self
            .tmux()
            .args(["send-keys", "-t", &self.session])
            .args(keys)
            .output()
            .expect("tmux send-keys");
        assert!(out.status.success(), "tmux send-keys: {}", text(&out));
    }

    /// Types `s` literally.
    pub fn type_text(&self, s: &str) {
        let out = self
            .tmux()
            .args(["send-keys", "-l", "-t", &self.session, s])
            .output()
            .expect("tmux send-keys");
        assert!(out.status.success(), "tmux send-keys -l: {}", text(&out));
    }

    /// The pane's text now.
    pub fn capture(&self) -> String {
        let out = self
            .tmux()
            .args(["capture-pane", "-p", "-t", &self.session])
            .output()
            .expect("tmux capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Captures until `cond` holds for the pane (returned) or `timeout`
    /// passes (panics with the last pane).
    pub fn wait_for(&self, timeout: Duration, what: &str, cond: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let pane = self.capture();
            if cond(&pane) {
                return pane;
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {timeout:?} waiting for {what}; the pane:\n{pane}"
            );
            thread::sleep(Duration::from_millis(200));
        }
    }

    /// Whether the session still exists.
    pub fn alive(&self) -> bool {
        self.tmux()
            .args(["has-session", "-t", &self.session])
            .output()
            .is_ok_and(|o| o.status.success())
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.tmux().arg("kill-server").output();
        // SAFETY: geteuid has no preconditions.
        let uid = unsafe { libc::geteuid() };
        let dir = std::env::var("TMUX_TMPDIR").unwrap_or_else(|_| "/tmp".into());
        let _ = std::fs::remove_file(format!("{dir}/tmux-{uid}/{}", self.socket));
    }
}
