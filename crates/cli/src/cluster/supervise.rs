//! The hub's children: each node runs as its own process with its output in its log file. A
//! child that exits is logged and left alone (an operator or a test restarts it from the
//! recorded command line); when the hub stops, it stops its children, SIGTERM first.

use std::{ffi::OsString, fs::OpenOptions, path::Path, process::Stdio, sync::Arc, time::Duration};

use cobuild_registry::MemberId;
use eyre::WrapErr;
use parking_lot::Mutex;
use tokio::{process::Command, sync::watch, task::JoinHandle};

/// How long a child may take to stop after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// The running children.
#[derive(Debug)]
pub(crate) struct Supervisor {
    stop: watch::Sender<bool>,
    children: Vec<JoinHandle<()>>,
    /// The children that exited on their own, with how, in the order they did.
    exited: Arc<Mutex<Vec<(MemberId, String)>>>,
}

impl Supervisor {
    pub(crate) fn new() -> Self {
        Self {
            stop: watch::channel(false).0,
            children: Vec::new(),
            exited: Arc::default(),
        }
    }

    /// The first node that exited on its own, and how.
    pub(crate) fn first_exit(&self) -> Option<(MemberId, String)> {
        self.exited.lock().first().cloned()
    }

    /// Starts `program argv` as node `id`, stdout and stderr appended to `log`; returns its pid.
    ///
    /// Must be called on the thread that runs the hub's main future (never from a spawned
    /// task): on Linux the child is told to get SIGTERM when the thread that started it ends,
    /// so a hub killed with SIGKILL does not leave its nodes running.
    pub(crate) fn spawn(
        &mut self,
        id: MemberId,
        program: &Path,
        argv: &[OsString],
        log: &Path,
    ) -> eyre::Result<u32> {
        let out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .wrap_err_with(|| format!("opening {}", log.display()))?;
        let err = out
            .try_clone()
            .wrap_err_with(|| format!("opening {}", log.display()))?;
        let mut command = Command::new(program);
        command
            .args(argv)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        #[cfg(target_os = "linux")]
        // SAFETY: prctl is async-signal-safe and the closure touches no other state, as
        // pre_exec requires between fork and exec.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = command
            .spawn()
            .wrap_err_with(|| format!("starting node {id}"))?;
        let pid = child
            .id()
            .ok_or_else(|| eyre::eyre!("node {id} exited at once"))?;
        let mut stop = self.stop.subscribe();
        let exited = self.exited.clone();
        self.children.push(tokio::spawn(async move {
            tokio::select! {
                status = child.wait() => {
                    // Left down on purpose: restarting is the operator's call.
                    let how = match status {
                        Ok(status) => {
                            tracing::warn!(id, pid, %status, "cli.devnet.node_exited");
                            status.to_string()
                        }
                        Err(error) => {
                            tracing::warn!(id, pid, %error, "cli.devnet.node_wait_failed");
                            error.to_string()
                        }
                    };
                    exited.lock().push((id, how));
                }
                // Stop when told, or when the supervisor is gone (the hub failed). The guard
                // `wait_for` answers with is dropped before the branch awaits.
                () = async { drop(stop.wait_for(|stop| *stop).await) } => {
                    terminate(pid);
                    match tokio::time::timeout(STOP_GRACE, child.wait()).await {
                        Ok(_) => tracing::info!(id, pid, "cli.devnet.node_stopped"),
                        Err(_) => {
                            tracing::warn!(id, pid, "cli.devnet.node_killed");
                            let _ = child.kill().await;
                        }
                    }
                }
            }
        }));
        Ok(pid)
    }

    /// Stops every child still running (SIGTERM, then SIGKILL after a grace period) and waits
    /// for them.
    pub(crate) async fn stop(self) {
        self.stop.send_replace(true);
        for child in self.children {
            let _ = child.await;
        }
    }
}

/// Asks process `pid` (a child not yet reaped, so the pid is still its own) to stop.
fn terminate(pid: u32) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    // SAFETY: kill(2) has no memory-safety preconditions.
    if unsafe { libc::kill(pid, libc::SIGTERM) } == -1 {
        tracing::debug!(pid, error = %std::io::Error::last_os_error(), "cli.devnet.sigterm_failed");
    }
}
