//! Runs the `director_flush_socket` program at the end of a user move (`auth-proxy.md` §11).
//!
//! Replaces `director_flush_user` / `director_flush_user_continue` in
//! `src/director/director.c` and the parts of `src/lib-program-client/` they use. Socket
//! schemes get the script-protocol request, then a half-close, and the server's output up
//! to EOF is classified by its last two bytes. `exec:` runs the program with the flush
//! arguments as argv, stdin from `/dev/null`, an empty environment, and judges it by its
//! exit status (0 = success, other = failure, killed = internal failure), as Dovecot's
//! local program client does.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use director_parsers::flush::{classify, FlushRequest, FlushResult};
use director_parsers::ip::ip_to_string;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};

use super::flush_target::{FlushTarget, FlushTemplate};

/// Connecting to a flush server may take this long (`client_connect_timeout_msecs`).
pub const FLUSH_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest a flush may run: the move's own timeout (`user-directory.md` §7.1).
pub const MAX_FLUSH_RUN: Duration = Duration::from_secs(30);
/// Output kept for classification and logging; more is an internal failure.
const MAX_OUTPUT: usize = 1 << 20;

/// Runs flushes for one configured `director_flush_socket`. Cheap to clone.
#[derive(Debug, Clone)]
pub struct FlushRunner {
    template: FlushTemplate,
    base_dir: PathBuf,
    run_timeout: Duration,
}

impl FlushRunner {
    /// A runner for `template`; relative paths are under `base_dir`. `run_timeout` bounds a
    /// whole run and is capped at [`MAX_FLUSH_RUN`].
    pub fn new(template: FlushTemplate, base_dir: PathBuf, run_timeout: Duration) -> Self {
        FlushRunner {
            template,
            base_dir,
            run_timeout: run_timeout.min(MAX_FLUSH_RUN),
        }
    }

    /// The bound on one run.
    pub fn run_timeout(&self) -> Duration {
        self.run_timeout
    }

    /// Flush one moved user; `new_hostname` is the new host's name in
    /// `director_mail_servers`, if it has one. Logs every failure itself.
    pub async fn run(&self, req: &FlushRequest, new_hostname: Option<&str>) -> FlushResult {
        let socket = self.template.expand(req.new_ip, new_hostname);
        let target = match FlushTarget::parse(&socket, &self.base_dir) {
            Ok(t) => t,
            Err(e) => {
                tracing::error!("{socket}: {e}");
                return FlushResult::InternalFailure;
            }
        };
        let run = run_target(&target, req);
        let (result, output) = match tokio::time::timeout(self.run_timeout, run).await {
            Ok(Ok(done)) => done,
            Ok(Err(e)) => {
                tracing::error!("{socket}: {e}");
                return FlushResult::InternalFailure;
            }
            Err(_) => {
                tracing::error!(
                    "{socket}: flush timed out after {} secs",
                    self.run_timeout.as_secs()
                );
                return FlushResult::InternalFailure;
            }
        };
        if result == FlushResult::Failure {
            log_failure(&socket, req, &output);
        }
        result
    }
}

/// Dovecot logs the failed program's output line by line.
fn log_failure(socket: &str, req: &FlushRequest, output: &[u8]) {
    let prefix = format!(
        "{socket}: Failed to flush user hash {} in host {}",
        req.hash,
        ip_to_string(&req.new_ip)
    );
    let reply = director_parsers::flush::FlushReply {
        result: FlushResult::Failure,
        output,
    };
    let lines = reply.lines();
    if lines.is_empty() {
        tracing::error!("{prefix}: (no output to stdout)");
    }
    for line in lines {
        tracing::error!("{prefix}: {}", String::from_utf8_lossy(line));
    }
}

/// Run to completion: the result and the output to log on failure.
async fn run_target(
    target: &FlushTarget,
    req: &FlushRequest,
) -> Result<(FlushResult, Vec<u8>), String> {
    match target {
        FlushTarget::Unix(path) => {
            let stream = connect(
                UnixStream::connect(path),
                &format!("net_connect_unix({})", path.display()),
            )
            .await?;
            talk(stream, req).await
        }
        FlushTarget::Tcp { host, port } => {
            let addr = format!("{host}:{port}");
            let stream = connect(
                TcpStream::connect((host.as_str(), *port)),
                &format!("connect({addr})"),
            )
            .await?;
            talk(stream, req).await
        }
        FlushTarget::Exec(program) => exec(program, req).await,
    }
}

async fn connect<S>(
    fut: impl std::future::Future<Output = std::io::Result<S>>,
    what: &str,
) -> Result<S, String> {
    match tokio::time::timeout(FLUSH_CONNECT_TIMEOUT, fut).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => Err(format!("{what} failed: {e}")),
        Err(_) => Err(format!(
            "{what} failed: Timed out after {} seconds",
            FLUSH_CONNECT_TIMEOUT.as_secs()
        )),
    }
}

/// The script protocol over a stream: request, half-close, everything until EOF.
async fn talk<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    req: &FlushRequest,
) -> Result<(FlushResult, Vec<u8>), String> {
    let mut request = Vec::new();
    req.encode(&mut request);
    stream
        .write_all(&request)
        .await
        .map_err(|e| format!("write failed: {e}"))?;
    stream
        .shutdown()
        .await
        .map_err(|e| format!("shutdown failed: {e}"))?;
    let output = read_all(&mut stream).await?;
    let reply = classify(&output);
    if reply.result == FlushResult::InternalFailure {
        return Err("Invalid or missing result from flush server".to_string());
    }
    Ok((reply.result, reply.output.to_vec()))
}

async fn read_all<R: AsyncRead + Unpin>(r: &mut R) -> Result<Vec<u8>, String> {
    let mut output = Vec::new();
    let mut limited = r.take(MAX_OUTPUT as u64 + 1);
    limited
        .read_to_end(&mut output)
        .await
        .map_err(|e| format!("read failed: {e}"))?;
    if output.len() > MAX_OUTPUT {
        return Err(format!("more than {MAX_OUTPUT} bytes of output"));
    }
    Ok(output)
}

/// `exec:`: the flush arguments as argv, judged by the exit status.
async fn exec(program: &Path, req: &FlushRequest) -> Result<(FlushResult, Vec<u8>), String> {
    let name = program.display();
    let mut cmd = tokio::process::Command::new(program);
    cmd.arg("FLUSH")
        .arg(req.hash.to_string())
        .arg(ip_to_string(&req.old_ip))
        .arg(ip_to_string(&req.new_ip))
        .arg(if req.old_host_down { "down" } else { "up" })
        .arg(req.old_vhost_count.to_string())
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .kill_on_drop(true);
    // ETXTBSY: the program is still open for writing somewhere (being replaced on disk, or a
    // descriptor inherited by a process forked at that moment); it clears within milliseconds.
    let mut attempt = 0;
    let mut child = loop {
        match cmd.spawn() {
            Ok(child) => break child,
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && attempt < 20 => {
                attempt += 1;
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            Err(e) => return Err(format!("execvp({name}) failed: {e}")),
        }
    };
    let mut stdout = child.stdout.take().ok_or("no stdout pipe")?;
    let output = read_all(&mut stdout).await?;
    let status = child
        .wait()
        .await
        .map_err(|e| format!("waitpid({name}) failed: {e}"))?;
    match status.code() {
        Some(0) => Ok((FlushResult::Success, output)),
        Some(code) => {
            tracing::info!("program `{name}' terminated with non-zero exit code {code}");
            Ok((FlushResult::Failure, output))
        }
        None => Err(format!("program `{name}' terminated abnormally: {status}")),
    }
}
