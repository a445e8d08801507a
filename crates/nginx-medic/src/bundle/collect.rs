//! `nginx-medic collect`: the live run of `diagnose --record`, redacted and packed into one
//! file a support engineer can diagnose anywhere (`diagnose --bundle FILE`).
//!
//! Read-only on the host: it reads what `diagnose` reads, runs what it runs (`nginx -T`,
//! `nginx -t`, `nginx -V`, the probes, `systemctl`/`journalctl`/`pm2` with argv and timeouts),
//! and writes only the bundle (through a private temporary directory, mode 0700, removed at
//! the end).

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use super::archive::{self, Manifest, Withheld, MANIFEST_SCHEMA};
use super::redact::{key_file_paths, LineRedactor, Redactor};
use crate::cli::{CollectArgs, DiagnoseArgs, DiagnoseFormat};

/// What `collect` wrote.
pub struct Collected {
    pub path: PathBuf,
    pub manifest: Manifest,
    pub bytes: u64,
}

/// Runs the collection; the summary goes to stderr.
pub fn run(args: &CollectArgs) -> Result<u8> {
    let c = collect(args)?;
    let redacted: u64 = c.manifest.redactions.iter().map(|r| r.count).sum();
    let files_redacted = {
        let mut f: Vec<&str> = c
            .manifest
            .redactions
            .iter()
            .map(|r| r.file.as_str())
            .collect();
        f.dedup();
        f.len()
    };
    eprintln!(
        "nginx-medic: wrote {} ({} files, {} bytes); redaction {}: {redacted} values in {files_redacted} files{}; diagnose it with `nginx-medic diagnose --bundle {}`",
        c.path.display(),
        c.manifest.files.len(),
        c.bytes,
        c.manifest.redaction,
        if c.manifest.withheld.is_empty() {
            String::new()
        } else {
            format!("; {} withheld (see MANIFEST)", c.manifest.withheld.len())
        },
        c.path.display()
    );
    Ok(0)
}

/// Gathers, redacts and packs.
pub fn collect(args: &CollectArgs) -> Result<Collected> {
    let private = tempfile::Builder::new()
        .prefix("nginx-medic-collect")
        .tempdir()
        .context("create a temporary directory")?;
    let raw = private.path().join("raw");
    let staged = private.path().join("staged");
    std::fs::create_dir_all(staged.join("logs"))?;

    let dargs = DiagnoseArgs {
        input: args.input.clone(),
        format: DiagnoseFormat::Json,
        max: 0,
        probe_wait_ms: args.probe_wait_ms,
        record: Some(raw.display().to_string()),
        ..DiagnoseArgs::default()
    };
    let mut diagnosis = Vec::new();
    let code = crate::diagnose::run_to(&dargs, false, &mut diagnosis)?;
    if code == 2 || !raw.join("bundle.json").exists() {
        bail!("nothing to collect: no nginx config or logs could be read");
    }

    let mut redactor = if args.no_redact {
        None
    } else {
        Some(Redactor::new()?)
    };
    let mut withheld: Vec<Withheld> = Vec::new();
    let mut files: Vec<String> = Vec::new();

    // The config, section by section.
    let dump = std::fs::read(raw.join("nginx-T.txt"))?;
    let sections = medic_parse::config::split_nginx_t(&dump).unwrap_or_default();
    let key_files = key_file_paths(&sections);
    let mut out = Vec::with_capacity(dump.len());
    for (path, text) in &sections {
        out.extend_from_slice(format!("# configuration file {path}:\n").as_bytes());
        let text = if key_files.contains(path) {
            withheld.push(Withheld {
                path: path.clone(),
                why: "named by a key-file directive (ssl_certificate_key, auth_basic_user_file, ...): its path is kept, its contents never".into(),
            });
            b"# contents withheld by nginx-medic collect: a key file\n".to_vec()
        } else {
            match &mut redactor {
                Some(r) => r.config(path, text),
                None => text.clone(),
            }
        };
        out.extend_from_slice(&text);
        if !out.ends_with(b"\n") {
            out.push(b'\n');
        }
        out.push(b'\n');
    }
    std::fs::write(staged.join("nginx-T.txt"), out)?;
    files.push("nginx-T.txt".into());

    // bundle.json: the recorded host answers and probe facts.
    let mut bundle: serde_json::Value =
        serde_json::from_slice(&std::fs::read(raw.join("bundle.json"))?)
            .context("read the recorded run")?;
    if let Some(host_files) = bundle
        .pointer_mut("/host/files")
        .and_then(|f| f.as_object_mut())
    {
        for (path, v) in host_files.iter_mut() {
            if key_files.contains(path) {
                *v = serde_json::json!({"Err": "withheld by nginx-medic collect: a key file"});
                withheld.push(Withheld {
                    path: path.clone(),
                    why: "a key file the config names".into(),
                });
            }
        }
    }
    let nginx_v = bundle
        .pointer("/instance/binary")
        .and_then(|b| b.as_str())
        .map(nginx_dash_v);
    if let Some(r) = &mut redactor {
        r.json("bundle.json", &mut bundle);
    }
    std::fs::write(
        staged.join("bundle.json"),
        serde_json::to_vec_pretty(&bundle)?,
    )?;
    files.push("bundle.json".into());

    if let Some(v) = nginx_v {
        let v = match &mut redactor {
            Some(r) => r.text("nginx-V.txt", v.as_bytes()),
            None => v.into_bytes(),
        };
        std::fs::write(staged.join("nginx-V.txt"), v)?;
        files.push("nginx-V.txt".into());
    }

    // The logs, as recorded (`logs/N-NAME`), gzip kept gzip'd.
    let mut logs: Vec<PathBuf> = std::fs::read_dir(raw.join("logs"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    logs.sort();
    for src in logs {
        let name = src
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let rel = format!("logs/{name}");
        if let Some(problem) = copy_log(&src, &staged.join(&rel), &rel, redactor.as_mut())? {
            withheld.push(Withheld {
                path: rel.clone(),
                why: problem,
            });
        }
        files.push(rel);
    }

    // The live diagnosis, to compare with the bundle's.
    let mut diagnosis: serde_json::Value =
        serde_json::from_slice(&diagnosis).context("the diagnosis")?;
    if let Some(r) = &mut redactor {
        r.json("diagnosis.json", &mut diagnosis);
    }
    std::fs::write(
        staged.join("diagnosis.json"),
        serde_json::to_vec_pretty(&diagnosis)?,
    )?;
    files.push("diagnosis.json".into());

    let manifest = Manifest {
        schema: MANIFEST_SCHEMA,
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        redaction: if redactor.is_some() {
            "on".into()
        } else {
            "off (--no-redact)".into()
        },
        files: Vec::new(),
        redactions: redactor
            .as_ref()
            .map(|r| r.ledger().into_iter().map(Into::into).collect())
            .unwrap_or_default(),
        withheld,
    };
    let path = PathBuf::from(&args.output);
    let manifest = archive::write(&path, &staged, &files, manifest)?;
    let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    Ok(Collected {
        path,
        manifest,
        bytes,
    })
}

/// `nginx -V` (it prints to stderr), bounded by a timeout; the error when it cannot run.
fn nginx_dash_v(binary: &str) -> String {
    let mut cmd = std::process::Command::new(binary);
    cmd.arg("-V");
    match crate::exec::run(&mut cmd, Duration::from_secs(5)) {
        Ok(o) => {
            let mut s = String::from_utf8_lossy(&o.stderr).into_owned();
            s.push_str(&String::from_utf8_lossy(&o.stdout));
            s
        }
        Err(e) => format!("{binary} -V could not run: {e}\n"),
    }
}

/// Copies one log line by line through the redactor; a gzip'd log is decompressed, redacted
/// and compressed again. Returns what could not be copied (a truncated gzip's tail).
fn copy_log(
    src: &Path,
    dest: &Path,
    rel: &str,
    mut redactor: Option<&mut Redactor>,
) -> Result<Option<String>> {
    let mut head = [0u8; 2];
    let gz = File::open(src)
        .and_then(|mut f| f.read(&mut head))
        .map(|n| n == 2 && head == [0x1f, 0x8b])
        .unwrap_or(false);
    let input = File::open(src).with_context(|| format!("open {}", src.display()))?;
    let mut reader: Box<dyn BufRead> = if gz {
        Box::new(BufReader::new(flate2::read::MultiGzDecoder::new(input)))
    } else {
        Box::new(BufReader::new(input))
    };
    let file = File::create(dest).with_context(|| format!("create {}", dest.display()))?;
    let mut writer: Box<dyn Write> = if gz {
        Box::new(flate2::write::GzEncoder::new(
            BufWriter::new(file),
            flate2::Compression::default(),
        ))
    } else {
        Box::new(BufWriter::new(file))
    };
    let mut lines = LineRedactor::default();
    let mut buf = Vec::new();
    let mut n = 0u32;
    let mut problem = None;
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                problem = Some(format!(
                    "{rel}: unreadable after line {n} ({e}); the lines before it are in the bundle"
                ));
                break;
            }
        }
        n += 1;
        match redactor.as_deref_mut() {
            Some(r) => writer.write_all(&lines.line(r, rel, n, &buf))?,
            None => writer.write_all(&buf)?,
        }
    }
    writer.flush()?;
    drop(writer);
    Ok(problem)
}
