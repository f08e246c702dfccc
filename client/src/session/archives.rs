//! Archives through a node: sealed and uploaded to the custodian, then registered with the key
//! wrapped for the patient, the custodian and every grant that covers it; fetched with a signed
//! access request, checked against the ledger's hash, and decrypted into a file that appears
//! only once every check passed.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use super::*;

impl Session {
    /// A custodian (or one of its clinicians, on its behalf) encrypts `file`, uploads the
    /// ciphertext to its own node and registers the archive for `patient`, wrapping its key for
    /// her, for the custodian and for every active grant of hers that covers it.
    pub fn put_archive(
        &self,
        file: &Path,
        patient: PublicKey,
        category: Category,
        progress: &dyn Progress,
    ) -> Result<PutReceipt, ClientError> {
        let patient_rec = self.patient(&patient)?;
        // The custodian is this key's institution: the key itself if it is a member's.
        let custodian = self.own_institution()?;
        let custodian_x25519 = self
            .consortium()
            .member(&custodian)
            .map(|m| m.x25519)
            .ok_or_else(|| ClientError::Invalid("the custodian is no member".into()))?;
        let mut id = [0u8; 32];
        getrandom::fill(&mut id)
            .map_err(|e| ClientError::Invalid(format!("random source failed: {e}")))?;
        let archive = ArchiveId(id);
        let key = ArchiveKey::generate()?;
        let open = |what: &str| -> Result<BufReader<File>, ClientError> {
            let f = File::open(file).map_err(io(format!("{what} {}", file.display())))?;
            Ok(BufReader::with_capacity(1 << 20, f))
        };
        let plaintext_len = std::fs::metadata(file)
            .map_err(io(format!("reading {}", file.display())))?
            .len();

        // Pass one: the ciphertext's hash, which the upload's signature and the ledger carry.
        progress.start("encrypting", plaintext_len);
        let summary = seal::ciphertext_digest(
            &key,
            &archive,
            Counting {
                inner: open("reading")?,
                progress,
            },
        )?;
        progress.finish();

        // Pass two: encrypt again (deterministic for this key) straight into the upload.
        let path = format!("/v1/archives/{}", hex::encode(summary.ciphertext_sha256));
        let auth = self.auth("PUT", &path, summary.ciphertext_sha256)?;
        progress.start("uploading", summary.ciphertext_bytes);
        let reader = seal::EncryptingReader::without_digest(&key, &archive, open("reading")?);
        let mut body = Counting {
            inner: reader,
            progress,
        };
        self.api.put_reader(
            &path,
            &auth,
            AUTH_HEADER,
            summary.ciphertext_bytes,
            &mut body,
        )?;
        progress.finish();

        let now = now_ms();
        let members = self.members()?;
        let mut grant_keys = Vec::new();
        for (grant, rec, _) in self.grants(&patient)? {
            if rec.revoked_at_ms.is_some()
                || rec.expires_at_ms <= now
                || !rec.scope.covers(&archive, category)
            {
                continue;
            }
            let Some(grantee) = members.iter().find(|m| m.public_key == rec.grantee) else {
                continue;
            };
            grant_keys.push(GrantKey {
                grant,
                key: wrap_key(key.as_bytes(), &archive, &grantee.x25519_public)?,
            });
        }
        let grants_covered = grant_keys.len();
        let body = TxBody::RegisterArchive(RegisterArchive {
            archive,
            custodian,
            patient,
            ciphertext_sha256: summary.ciphertext_sha256,
            size_bytes: summary.ciphertext_bytes,
            category,
            key_for_patient: wrap_key(key.as_bytes(), &archive, &patient_rec.x25519)?,
            key_for_custodian: wrap_key(key.as_bytes(), &archive, &custodian_x25519)?,
            grant_keys: BoundedVec::new(grant_keys)?,
        });
        let tx = self.submit(body)?;
        Ok(PutReceipt {
            archive,
            ciphertext_sha256: summary.ciphertext_sha256,
            ciphertext_bytes: summary.ciphertext_bytes,
            plaintext_bytes: summary.plaintext_bytes,
            grants_covered,
            tx,
        })
    }

    /// A signed access request for `archive`, with a fresh id and time (and the justification
    /// sealed for the patient and the regulators), and its time.
    fn access_request(
        &self,
        patient: &cradle_ledger::PublicKey,
        archive: ArchiveId,
        purpose: Purpose,
        justification: Option<&str>,
    ) -> Result<(Vec<u8>, u64), ClientError> {
        let mut request_id = [0u8; 16];
        getrandom::fill(&mut request_id)
            .map_err(|e| ClientError::Invalid(format!("random source failed: {e}")))?;
        let mut request = AccessRequest {
            accessor: self.key.public_key(),
            archive,
            purpose,
            justification: None,
            requested_at_ms: now_ms(),
            request_id,
        };
        // The justification never leaves this machine in clear: sealed for the patient and
        // the regulators, bound to this request, then signed with it.
        if let Some(text) = justification {
            let readers = self.justification_readers(patient)?;
            justification::seal_into(&mut request, &self.chain_id, text, &readers)?;
        }
        let requested_at_ms = request.requested_at_ms;
        let signature = self.key.sign(TAG_ACCESS_REQUEST, &self.chain_id, &request);
        Ok((
            SignedAccessRequest { request, signature }.encode(),
            requested_at_ms,
        ))
    }

    /// Asks the archive's custodian for it. The custodian records the access on the ledger
    /// first; then the ciphertext is checked against the ledger's hash and decrypted into a
    /// temporary file beside `out`, which becomes `out` only if every check passed.
    pub fn get_archive(
        &self,
        archive: ArchiveId,
        purpose: Purpose,
        justification: Option<&str>,
        out: &Path,
        progress: &dyn Progress,
    ) -> Result<GetReceipt, ClientError> {
        let record = self.archive_record(&archive)?;
        // A node under load refuses before it records anything (429, 503): the request is
        // signed afresh, with a new id, and sent again a few times, a little later each time.
        let mut attempt = 0;
        let (fetched, request_hash, requested_at_ms) = loop {
            attempt += 1;
            let (body, requested_at_ms) =
                self.access_request(&record.patient, archive, purpose, justification)?;
            let request_hash = sha256(&body);
            let path = format!("/v1/archives/{}/fetch", archive.to_hex());
            let auth = self.auth("POST", &path, sha256(&body))?;
            match self.api.fetch(&path, &auth, AUTH_HEADER, &body)? {
                crate::api::Fetched::Stream(s) => break (s, request_hash, requested_at_ms),
                crate::api::Fetched::Refused {
                    status: 429 | 503,
                    access_tx: None,
                    ..
                } if attempt <= crate::api::BUSY_RETRIES => {
                    std::thread::sleep(crate::api::BUSY_BACKOFF * attempt);
                }
                crate::api::Fetched::Refused {
                    status,
                    reason,
                    access_tx,
                    code,
                } => {
                    return Err(match access_tx {
                        Some(access_tx) => ClientError::Denied { reason, access_tx },
                        None => ClientError::Api(ApiError::Refused {
                            status,
                            reason,
                            code,
                        }),
                    });
                }
            }
        };
        let wrapped = WrappedKey::from_hex(&fetched.wrapped_key_hex)
            .map_err(|_| bad_answer("wrapped key header"))?;
        let key = unwrap_key(&wrapped, &archive, &self.key)?;
        let key = ArchiveKey::from_bytes(&key);

        let tmp = temp_beside(out)?;
        let result = (|| {
            let file = File::create_new(&tmp)
                .and_then(FlushingFile::new)
                .map_err(io(format!("creating {}", tmp.display())))?;
            let mut writer = std::io::BufWriter::with_capacity(1 << 20, file);
            progress.start("downloading", record.size_bytes);
            let mut seen = 0u64;
            let n = seal::decrypt_to(
                &key,
                &archive,
                &record.ciphertext_sha256,
                record.size_bytes,
                fetched.body,
                &mut writer,
                &mut |total| {
                    progress.advance(total - seen);
                    seen = total;
                },
            )?;
            progress.finish();
            let file = writer.into_inner().map_err(|e| ClientError::Io {
                what: format!("writing {}", tmp.display()),
                source: e.into_error(),
            })?;
            file.sync_all()
                .map_err(io(format!("syncing {}", tmp.display())))?;
            Ok::<u64, ClientError>(n)
        })();
        // Written out only once this very access is proven committed, from genesis alone: a
        // node that streams without logging first is caught here.
        let result = result.and_then(|n| {
            self.check_logged(&request_hash, &fetched.access_tx, requested_at_ms)
                .map(|()| n)
        });
        let n = match result {
            Ok(n) => n,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
        };
        std::fs::rename(&tmp, out).map_err(io(format!("writing {}", out.display())))?;
        Ok(GetReceipt {
            plaintext_bytes: n,
            outcome: fetched.outcome,
            access_tx: fetched.access_tx,
        })
    }
}

/// How far around the request's time the committed access is looked for: the block's time is
/// its proposer's clock, not the client's.
const LOGGED_WINDOW_MS: u64 = 5 * 60 * 1000;

impl Session {
    /// Proves, from genesis alone, that the access this client just made is committed: a
    /// verified answer over this accessor's own log, around `requested_at_ms`, holds an event
    /// for exactly the signed request that hashes to `request_hash`, in transaction
    /// `access_tx`.
    fn check_logged(
        &self,
        request_hash: &Hash,
        access_tx: &str,
        requested_at_ms: u64,
    ) -> Result<(), ClientError> {
        let unproven = |e: &dyn std::fmt::Display| ClientError::Unproven(e.to_string());
        let me = self.key.public_key();
        let range = (
            requested_at_ms.saturating_sub(LOGGED_WINDOW_MS),
            now_ms().saturating_add(LOGGED_WINDOW_MS),
        );
        let fetch = |subject: &AuditSubject| {
            crate::audit::fetch_audit(&self.api, &self.key, &self.chain_id, subject, Some(range))
        };
        let mut subject = AuditSubject::Accessor(me);
        let answer = match fetch(&subject) {
            Ok(answer) => answer,
            // A patient whose keys changed may not read her new key's own log: the node
            // answers her as the patient she enrolled as, whose history holds her reads too.
            Err(first) => match self.identity() {
                Ok(identity) if identity != me => {
                    subject = AuditSubject::Patient(identity);
                    fetch(&subject).map_err(|e| unproven(&e))?
                }
                _ => return Err(unproven(&first)),
            },
        };
        if answer.subject != subject || answer.range() != Some(range) {
            return Err(unproven(&"the answer is not about this access"));
        }
        let verified = verify_answer(&self.sets, &answer).map_err(|e| unproven(&e))?;
        let logged = verified.events.iter().any(|e| {
            e.event.request_hash.0 == *request_hash && hex::encode(e.event.tx_hash.0) == access_tx
        });
        if logged {
            Ok(())
        } else {
            Err(ClientError::Unproven(format!(
                "the custodian sent the archive but its access record {access_tx} is not on \
                 the ledger; nothing was written"
            )))
        }
    }
}

/// A reader that reports what passed through it.
struct Counting<'p, R> {
    inner: R,
    progress: &'p dyn Progress,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.advance(n as u64);
        Ok(n)
    }
}

/// A fresh temporary path in `out`'s directory, so the final rename stays on one filesystem.
fn temp_beside(out: &Path) -> Result<PathBuf, ClientError> {
    let dir = match out.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "archive".into());
    let mut r = [0u8; 6];
    getrandom::fill(&mut r)
        .map_err(|e| ClientError::Invalid(format!("random source failed: {e}")))?;
    Ok(dir.join(format!(".{name}.{}.partial", hex::encode(r))))
}
