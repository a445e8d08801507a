//! The bundle file: a gzip'd tar that standard `tar` opens, every file under one top directory,
//! with a `MANIFEST` (JSON: each file's size and SHA-256, what was redacted and why) and a
//! `SHA256SUMS` that `sha256sum -c` checks.
//!
//! Reading trusts nothing: only regular files and directories, only relative paths without
//! `..`, under the top directory, sizes bounded before a byte is written, every file checked
//! against the MANIFEST (a mismatch names the file), and everything goes into a fresh temporary
//! directory that the caller owns.

use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::redact::Redaction;

/// The top directory inside the tar.
pub const TOP: &str = "nginx-medic-bundle";
/// The MANIFEST's layout version.
pub const MANIFEST_SCHEMA: u32 = 1;
/// A file larger than this in a bundle is refused before it is written (logs of a day fit).
pub const MAX_FILE: u64 = 8 << 30;
/// All files together.
pub const MAX_TOTAL: u64 = 16 << 30;
/// Entries at most.
pub const MAX_ENTRIES: usize = 10_000;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Manifest {
    pub schema: u32,
    pub tool_version: String,
    /// When it was collected (UTC, RFC 3339).
    pub created: String,
    /// `on` (default) or `off (--no-redact)`.
    pub redaction: String,
    pub files: Vec<ManifestFile>,
    #[serde(default)]
    pub redactions: Vec<RedactionEntry>,
    /// Files that were not collected, and why (key files, unreadable logs).
    #[serde(default)]
    pub withheld: Vec<Withheld>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ManifestFile {
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RedactionEntry {
    pub file: String,
    pub what: String,
    pub why: String,
    pub count: u64,
    pub lines: Vec<u32>,
}

impl From<Redaction> for RedactionEntry {
    fn from(r: Redaction) -> Self {
        RedactionEntry {
            file: r.file,
            what: r.what.to_string(),
            why: r.why,
            count: r.count,
            lines: r.lines,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Withheld {
    pub path: String,
    pub why: String,
}

/// Writes `files` (relative path -> file on disk, already redacted) as a bundle at `out`:
/// through a temporary file beside it, renamed into place, mode 0600 (it holds logs).
pub fn write(
    out: &Path,
    staged: &Path,
    files: &[String],
    mut manifest: Manifest,
) -> Result<Manifest> {
    for rel in files {
        let path = staged.join(rel);
        let (size, sha256) =
            hash_file(&path).with_context(|| format!("read {}", path.display()))?;
        manifest.files.push(ManifestFile {
            path: rel.clone(),
            size,
            sha256,
        });
    }
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = tempfile::Builder::new()
        .prefix(".nginx-medic-bundle")
        .tempfile_in(dir)
        .with_context(|| format!("create a temporary file in {}", dir.display()))?;
    {
        let gz = flate2::write::GzEncoder::new(
            io::BufWriter::new(tmp.as_file()),
            flate2::Compression::default(),
        );
        let mut tar = tar::Builder::new(gz);
        tar.mode(tar::HeaderMode::Deterministic);
        let manifest_json = serde_json::to_vec_pretty(&manifest)?;
        append_bytes(&mut tar, "MANIFEST", &manifest_json)?;
        let sums: String = manifest
            .files
            .iter()
            .map(|f| format!("{}  {}\n", f.sha256, f.path))
            .collect();
        append_bytes(&mut tar, "SHA256SUMS", sums.as_bytes())?;
        for rel in files {
            let path = staged.join(rel);
            let mut f = File::open(&path).with_context(|| format!("open {}", path.display()))?;
            let mut header = tar::Header::new_gnu();
            header.set_size(f.metadata()?.len());
            header.set_mode(0o644);
            header.set_mtime(0);
            header.set_entry_type(tar::EntryType::Regular);
            tar.append_data(&mut header, format!("{TOP}/{rel}"), &mut f)
                .with_context(|| format!("add {rel}"))?;
        }
        let gz = tar.into_inner()?;
        let mut w = gz.finish()?;
        w.flush()?;
    }
    tmp.as_file().sync_all()?;
    use std::os::unix::fs::PermissionsExt;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o600))?;
    tmp.persist(out)
        .with_context(|| format!("write {}", out.display()))?;
    Ok(manifest)
}

fn append_bytes<W: Write>(tar: &mut tar::Builder<W>, rel: &str, bytes: &[u8]) -> Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(bytes.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut header, format!("{TOP}/{rel}"), bytes)?;
    Ok(())
}

fn hash_file(path: &Path) -> io::Result<(u64, String)> {
    let mut f = BufReader::new(File::open(path)?);
    let mut h = openssl::sha::Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        size += n as u64;
        h.update(&buf[..n]);
    }
    Ok((size, hex(&h.finish())))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|b| format!("{b:02x}")).collect()
}

/// A bundle unpacked into a temporary directory (removed on drop).
pub struct Unpacked {
    pub dir: tempfile::TempDir,
    pub manifest: Manifest,
}

impl Unpacked {
    /// The directory holding `bundle.json`, `nginx-T.txt`, `logs/`.
    pub fn root(&self) -> PathBuf {
        self.dir.path().join(TOP)
    }
}

/// Unpacks and checks a bundle. Errors name the file and the problem.
pub fn read(bundle: &Path) -> Result<Unpacked> {
    let file = File::open(bundle).with_context(|| format!("open {}", bundle.display()))?;
    let dir = tempfile::Builder::new()
        .prefix("nginx-medic-bundle")
        .tempdir()
        .context("create a temporary directory")?;
    let name = bundle.display().to_string();
    let gz = flate2::read::GzDecoder::new(BufReader::new(file));
    let mut archive = tar::Archive::new(gz);
    let mut seen: Vec<(String, u64, String)> = Vec::new();
    let mut manifest_bytes: Option<Vec<u8>> = None;
    let mut total = 0u64;
    let entries = archive
        .entries()
        .with_context(|| format!("{name}: not a tar.gz bundle"))?;
    for (n, entry) in entries.enumerate() {
        let mut entry = entry.map_err(|e| damaged(&name, e))?;
        if n >= MAX_ENTRIES {
            bail!("{name}: more than {MAX_ENTRIES} entries: not a bundle nginx-medic wrote");
        }
        let raw_path = entry.path().map_err(|e| damaged(&name, e))?.into_owned();
        let shown = raw_path.display().to_string();
        let rel =
            safe_relative(&raw_path).with_context(|| format!("{name}: refused entry {shown:?}"))?;
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            continue;
        }
        if !kind.is_file() {
            bail!("{name}: refused entry {shown:?}: a {kind:?}, not a regular file (links and devices are never in a bundle)");
        }
        let size = entry.header().size().map_err(|e| damaged(&name, e))?;
        if size > MAX_FILE {
            bail!(
                "{name}: refused entry {shown:?}: it claims {size} bytes, more than the {} GiB a bundle file may hold",
                MAX_FILE >> 30
            );
        }
        total += size;
        if total > MAX_TOTAL {
            bail!(
                "{name}: the entries claim more than {} GiB together: refused",
                MAX_TOTAL >> 30
            );
        }
        let dest = dir.path().join(TOP).join(&rel);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&dest)
            .with_context(|| format!("{name}: entry {shown:?} twice or unwritable"))?;
        let mut h = openssl::sha::Sha256::new();
        let mut buf = vec![0u8; 1 << 16];
        let mut got = 0u64;
        let mut keep = Vec::new();
        let is_manifest = rel == Path::new("MANIFEST");
        loop {
            let k = entry.read(&mut buf).map_err(|e| damaged(&name, e))?;
            if k == 0 {
                break;
            }
            got += k as u64;
            h.update(&buf[..k]);
            out.write_all(&buf[..k])?;
            if is_manifest && keep.len() < (16 << 20) {
                keep.extend_from_slice(&buf[..k]);
            }
        }
        if got != size {
            bail!("{name}: {shown}: {got} of {size} bytes: the bundle is truncated");
        }
        if is_manifest {
            manifest_bytes = Some(keep);
        }
        seen.push((rel.display().to_string(), got, hex(&h.finish())));
    }
    let manifest_bytes = manifest_bytes.with_context(|| {
        format!("{name}: no MANIFEST: not a bundle of `nginx-medic collect`, or truncated")
    })?;
    let manifest: Manifest = serde_json::from_slice(&manifest_bytes)
        .with_context(|| format!("{name}: MANIFEST is not valid"))?;
    if manifest.schema > MANIFEST_SCHEMA {
        bail!(
            "{name}: MANIFEST schema {} is newer than this nginx-medic reads ({MANIFEST_SCHEMA}); it was written by nginx-medic {}: upgrade to read it",
            manifest.schema,
            manifest.tool_version
        );
    }
    for f in &manifest.files {
        match seen.iter().find(|(p, _, _)| p == &f.path) {
            None => bail!("{name}: {} is in the MANIFEST but not in the bundle: truncated or tampered", f.path),
            Some((_, size, sha)) if sha != &f.sha256 || *size != f.size => bail!(
                "{name}: {} was changed after collection: SHA-256 {sha} ({size} bytes), the MANIFEST says {} ({} bytes)",
                f.path,
                f.sha256,
                f.size
            ),
            Some(_) => {}
        }
    }
    for (p, _, _) in &seen {
        if p != "MANIFEST" && p != "SHA256SUMS" && !manifest.files.iter().any(|f| &f.path == p) {
            bail!("{name}: {p} is not in the MANIFEST: tampered");
        }
    }
    Ok(Unpacked { dir, manifest })
}

fn damaged(name: &str, e: io::Error) -> anyhow::Error {
    anyhow::anyhow!("{name}: the bundle is damaged or truncated: {e}")
}

/// The path under [`TOP`], refused when absolute, with `..`, or outside [`TOP`].
fn safe_relative(p: &Path) -> Result<PathBuf> {
    let mut parts = Vec::new();
    for c in p.components() {
        match c {
            Component::Normal(s) => parts.push(s.to_owned()),
            Component::CurDir => {}
            Component::ParentDir => bail!("a `..` component"),
            Component::RootDir | Component::Prefix(_) => bail!("an absolute path"),
        }
    }
    match parts.first() {
        Some(top) if top == TOP => {}
        _ => bail!("outside {TOP}/"),
    }
    if parts.len() > 4 {
        bail!("deeper than a bundle is");
    }
    Ok(parts[1..].iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        Manifest {
            schema: MANIFEST_SCHEMA,
            tool_version: "test".into(),
            created: "2026-12-05T00:00:00Z".into(),
            redaction: "on".into(),
            files: Vec::new(),
            redactions: Vec::new(),
            withheld: Vec::new(),
        }
    }

    fn staged() -> (tempfile::TempDir, Vec<String>) {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("logs")).unwrap();
        std::fs::write(d.path().join("bundle.json"), b"{}").unwrap();
        std::fs::write(d.path().join("logs/0-error.log"), b"line\n").unwrap();
        (d, vec!["bundle.json".into(), "logs/0-error.log".into()])
    }

    #[test]
    fn round_trip_checks_every_file() {
        let (d, files) = staged();
        let out = d.path().join("b.tar.gz");
        write(&out, d.path(), &files, manifest()).unwrap();
        let u = read(&out).unwrap();
        assert_eq!(u.manifest.files.len(), 2);
        assert_eq!(
            std::fs::read(u.root().join("logs/0-error.log")).unwrap(),
            b"line\n"
        );
    }

    /// A tar.gz with raw headers: what a hostile bundle can say.
    fn raw(entries: &[(&str, tar::EntryType, u64, &[u8])]) -> Vec<u8> {
        let mut tar = tar::Builder::new(Vec::new());
        for (path, kind, size, data) in entries {
            let mut h = tar::Header::new_gnu();
            // set_path refuses `..`; write the name bytes directly, as an attacker would.
            let name = &mut h.as_old_mut().name;
            name[..path.len()].copy_from_slice(path.as_bytes());
            h.set_entry_type(*kind);
            h.set_size(*size);
            h.set_mode(0o644);
            if kind.is_symlink() {
                h.set_link_name("/etc/passwd").unwrap();
            }
            h.set_cksum();
            tar.append(&h, *data).unwrap();
        }
        let data = tar.into_inner().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&data).unwrap();
        gz.finish().unwrap()
    }

    fn refused(bytes: &[u8]) -> String {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("evil.tar.gz");
        std::fs::write(&p, bytes).unwrap();
        let e = read(&p).err().expect("refused");
        format!("{e:#}")
    }

    #[test]
    fn hostile_bundles_are_refused() {
        let e = refused(&raw(&[(
            "nginx-medic-bundle/../../x",
            tar::EntryType::Regular,
            1,
            b"x",
        )]));
        assert!(e.contains("`..`"), "{e}");
        let e = refused(&raw(&[("/etc/cron.d/x", tar::EntryType::Regular, 1, b"x")]));
        assert!(e.contains("absolute"), "{e}");
        let e = refused(&raw(&[(
            "nginx-medic-bundle/logs",
            tar::EntryType::Symlink,
            0,
            b"",
        )]));
        assert!(e.contains("not a regular file"), "{e}");
        let e = refused(&raw(&[(
            "nginx-medic-bundle/big",
            tar::EntryType::Regular,
            10_000_000_000,
            b"",
        )]));
        assert!(e.contains("claims 10000000000 bytes"), "{e}");
        let e = refused(&raw(&[(
            "nginx-medic-bundle/x",
            tar::EntryType::Regular,
            1,
            b"x",
        )]));
        assert!(e.contains("no MANIFEST"), "{e}");
    }

    #[test]
    fn truncated_and_tampered_bundles_say_which() {
        let (d, files) = staged();
        let out = d.path().join("b.tar.gz");
        write(&out, d.path(), &files, manifest()).unwrap();
        let bytes = std::fs::read(&out).unwrap();
        let e = refused(&bytes[..bytes.len() / 2]);
        assert!(e.contains("truncated") || e.contains("damaged"), "{e}");

        // Tamper: rebuild the tar with a changed log but the old MANIFEST.
        let u = read(&out).unwrap();
        std::fs::write(u.root().join("logs/0-error.log"), b"lie\n").unwrap();
        let mut tar = tar::Builder::new(Vec::new());
        tar.append_dir_all(TOP, u.root()).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar.into_inner().unwrap()).unwrap();
        let e = refused(&gz.finish().unwrap());
        assert!(
            e.contains("logs/0-error.log was changed after collection"),
            "{e}"
        );

        let mut m = manifest();
        m.schema = MANIFEST_SCHEMA + 1;
        write(&out, d.path(), &files, m).unwrap();
        let e = format!("{:#}", read(&out).err().unwrap());
        assert!(e.contains("newer than this nginx-medic reads"), "{e}");
    }
}
