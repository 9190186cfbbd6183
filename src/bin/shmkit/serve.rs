//! `shmkit serve --listen ADDR [NAME…|--all]`: `/metrics` over HTTP for Prometheus, the segments
//! read again at every scrape. The HTTP side is tiny_http's (no parser written here).

use crate::export::{render_with, ExportFormat, Segments};
use crate::fmt::CmdResult;
use shmkit::export::{Format, Metrics};
use std::time::Duration;
use tiny_http::{Header, Method, Request, Response, Server};

/// The format a scraper asked for: OpenMetrics when its `Accept` names it (Prometheus sends
/// `application/openmetrics-text;version=1.0.0,…;q=0.5,text/plain;version=0.0.4;q=0.4,…`),
/// else the Prometheus text format, unless `forced`.
fn negotiate(req: &Request, forced: Option<ExportFormat>) -> ExportFormat {
    if let Some(f) = forced {
        return f;
    }
    let accept = req
        .headers()
        .iter()
        .find(|h| h.field.equiv("Accept"))
        .map(|h| h.value.as_str().to_ascii_lowercase())
        .unwrap_or_default();
    let wants_om = accept.split(',').any(|part| {
        let mut it = part.split(';');
        let ty = it.next().unwrap_or("").trim();
        let q_zero = it.any(|p| matches!(p.trim(), "q=0" | "q=0.0" | "q=0.00" | "q=0.000"));
        ty == "application/openmetrics-text" && !q_zero
    });
    if wants_om {
        ExportFormat::Openmetrics
    } else {
        ExportFormat::Prometheus
    }
}

fn header(name: &str, value: &str) -> Header {
    // Both are fixed ASCII strings of this file or of shmkit::export::Format.
    Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("a valid ASCII header")
}

fn respond(req: Request, m: &mut Metrics, segments: &Segments, forced: Option<ExportFormat>) {
    let path = req.url().split('?').next().unwrap_or("");
    if !matches!(req.method(), Method::Get | Method::Head) {
        let _ = req.respond(Response::from_string("only GET and HEAD\n").with_status_code(405));
        return;
    }
    let resp = match path {
        "/metrics" => {
            let format = negotiate(&req, forced);
            let mut body = Vec::with_capacity(64 * 1024);
            match render_with(m, segments, format, &mut body) {
                Ok(_) => {
                    let ct = match format {
                        ExportFormat::Openmetrics => Format::OpenMetrics.content_type(),
                        ExportFormat::Prometheus => Format::Prometheus.content_type(),
                        ExportFormat::Json => "application/json",
                    };
                    Response::from_data(body).with_header(header("Content-Type", ct))
                }
                Err(e) => {
                    Response::from_string(format!("rendering failed: {e}\n")).with_status_code(500)
                }
            }
        }
        "/" => Response::from_string("shmkit: the metrics are at /metrics\n".to_string())
            .with_header(header("Content-Type", "text/plain; charset=utf-8")),
        _ => Response::from_string("not found; the metrics are at /metrics\n".to_string())
            .with_status_code(404),
    };
    // tiny_http sends no body to a HEAD request (the headers are those of a GET).
    let _ = req.respond(resp);
}

/// `shmkit serve`.
pub fn serve(listen: &str, segments: &Segments, forced: Option<ExportFormat>) -> CmdResult {
    crate::signal::install();
    let server = Server::http(listen).map_err(|e| format!("listening on {listen}: {e}"))?;
    let addr = server
        .server_addr()
        .to_ip()
        .map_or(listen.to_string(), |a| a.to_string());
    println!("serving http://{addr}/metrics (Ctrl-C stops)");
    use std::io::Write;
    let _ = std::io::stdout().flush();
    // One set of metrics, cleared and refilled at each scrape: its memory is reused.
    let mut metrics = Metrics::new();
    while !crate::signal::interrupted() {
        match server.recv_timeout(Duration::from_millis(100)) {
            Ok(Some(req)) => respond(req, &mut metrics, segments, forced),
            Ok(None) => {}
            Err(e) => return Err(format!("accepting a request: {e}").into()),
        }
    }
    Ok(0)
}
