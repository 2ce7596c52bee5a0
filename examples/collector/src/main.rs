use std::io::{Read, Write};
use std::process::ExitCode;

use evbuf_collector::{serve, Config, Mount};
use tokio::sync::oneshot;

const USAGE: &str = "\
Reference bulk endpoint for the evbuf browser SDK (tests and demo).

Usage: evbuf-collector [OPTIONS]

Options:
  --addr ADDR            Listen address [default: 127.0.0.1:8787]; port 0 picks a free port
  --db PATH              SQLite file [default: :memory:]
  --serve [/PREFIX=]DIR  Also serve static files from DIR, at / or at /PREFIX;
                         repeatable, one directory per prefix; API routes win at /
  --record-bodies DIR    Append every bulk body, decoded, to DIR/bodies.jsonl (one JSON line each)
  --exit-on-stdin-eof    Stop when stdin closes (lets a test harness end it reliably)
  -h, --help             Print this help

Prints one line `evbuf-collector listening on http://HOST:PORT` to stdout once
bound. Stops gracefully on SIGINT or SIGTERM.

Endpoints: POST /bulk/event, GET /events[?summary=1], GET|POST /control, POST /reset
";

struct Cli {
    config: Config,
    exit_on_stdin_eof: bool,
}

/// Returns Ok(None) when help was asked for.
fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<Cli>, String> {
    let mut cli = Cli {
        config: Config::default(),
        exit_on_stdin_eof: false,
    };
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag.to_string(), Some(value.into())),
            _ => (arg, None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(None),
            "--addr" => {
                let v = value()?;
                cli.config.addr = v.parse().map_err(|e| format!("--addr {v}: {e}"))?;
            }
            "--db" => cli.config.db = value()?,
            "--serve" => cli.config.mounts.push(Mount::parse(&value()?)?),
            "--record-bodies" => cli.config.record_bodies = Some(value()?.into()),
            "--exit-on-stdin-eof" => cli.exit_on_stdin_eof = true,
            other => return Err(format!("unknown argument: {other}")),
        }
    }
    Ok(Some(cli))
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = match parse_args(std::env::args().skip(1)) {
        Ok(Some(cli)) => cli,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("evbuf-collector: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if !cli.config.addr.ip().is_loopback() {
        eprintln!("evbuf-collector: warning: listening beyond loopback; anyone can post and reset");
    }
    let (addr, server) = match serve(cli.config).await {
        Ok(started) => started,
        Err(e) => {
            eprintln!("evbuf-collector: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Harnesses parse this line, so it must be the only stdout output and
    // must not sit in a buffer.
    println!("evbuf-collector listening on http://{addr}");
    let _ = std::io::stdout().flush();

    stopped(cli.exit_on_stdin_eof).await;
    if let Err(e) = server.shutdown().await {
        eprintln!("evbuf-collector: {e}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

async fn stopped(exit_on_stdin_eof: bool) {
    let stdin_eof = async {
        if !exit_on_stdin_eof {
            return std::future::pending().await;
        }
        // A plain thread, not tokio's stdin: a blocking read on the runtime's
        // pool would keep the process alive after a signal.
        let (tx, rx) = oneshot::channel::<()>();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            let mut stdin = std::io::stdin().lock();
            loop {
                match stdin.read(&mut buf) {
                    Ok(0) => break,
                    Err(e) if e.kind() != std::io::ErrorKind::Interrupted => break,
                    _ => {}
                }
            }
            let _ = tx.send(());
        });
        let _ = rx.await;
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
        _ = stdin_eof => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Option<Cli>, String> {
        parse_args(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn parses_flags() {
        let cli = parse(&[
            "--addr=127.0.0.1:0",
            "--db",
            "x.db",
            "--serve",
            "/pkg=out",
            "--record-bodies",
            "bodies",
            "--exit-on-stdin-eof",
        ])
        .unwrap()
        .unwrap();
        assert_eq!(cli.config.addr.port(), 0);
        assert_eq!(cli.config.db, "x.db");
        assert_eq!(cli.config.mounts[0].prefix, "/pkg");
        assert_eq!(cli.config.record_bodies, Some("bodies".into()));
        assert!(cli.exit_on_stdin_eof);
        assert!(parse(&["--help"]).unwrap().is_none());
        assert!(parse(&["--addr"]).is_err());
        assert!(parse(&["--bogus"]).is_err());
    }

    #[test]
    fn defaults_to_loopback_and_memory() {
        let cli = parse(&[]).unwrap().unwrap();
        assert_eq!(cli.config.addr.to_string(), "127.0.0.1:8787");
        assert_eq!(cli.config.db, ":memory:");
    }
}
