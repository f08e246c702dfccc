//! The archive store on S3-compatible object storage, against a real S3 server (moto, in server
//! mode) that the test starts on loopback: a four-member localnet whose County Hospital 1 keeps
//! its ciphertexts in a bucket. A record goes up as a multipart upload and comes back identical;
//! a damaged or missing object is never served; a server that stops mid-transfer ends the
//! download with an error and nothing is written; an upload while it is down fails cleanly.
#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

use std::io::Read;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cradle_tests::Cluster;
use cradle_tests::cli::{cradle, member_upload, mother_with_archive, ok};

const WAIT: Duration = Duration::from_secs(30);
const BUCKET: &str = "cradle-archives";
/// Larger than one 8 MiB part and than what sockets buffer, so transfers take several steps.
const RECORD_BYTES: usize = 40 << 20;

/// moto's S3 server on a free loopback port; killed when dropped.
struct S3Server {
    child: Child,
    endpoint: String,
}

impl S3Server {
    fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("python3")
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 -m moto.server (scripts/test.sh installs moto[server])");
        let endpoint = format!("http://127.0.0.1:{port}");
        let until = Instant::now() + WAIT;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < until, "the S3 server never listened");
            std::thread::sleep(Duration::from_millis(100));
        }
        let server = Self { child, endpoint };
        assert_eq!(server.request("PUT", &format!("/{BUCKET}"), None).0, 200);
        server
    }

    /// An unsigned request (moto takes any), its status and body.
    fn request(&self, method: &str, path: &str, body: Option<&[u8]>) -> (u16, Vec<u8>) {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let url = format!("{}{path}", self.endpoint);
        let mut answer = match (method, body) {
            ("PUT", Some(b)) => agent.put(&url).send(b).unwrap(),
            ("PUT", None) => agent.put(&url).send_empty().unwrap(),
            ("DELETE", _) => agent.delete(&url).call().unwrap(),
            _ => agent.get(&url).call().unwrap(),
        };
        let status = answer.status().as_u16();
        let bytes = answer
            .body_mut()
            .with_config()
            .limit(1 << 30)
            .read_to_vec()
            .unwrap();
        (status, bytes)
    }

    /// Deletes an object with a signed request (boto3, which moto ships with).
    fn delete(&self, key: &str) {
        let script = format!(
            "import boto3; boto3.client('s3', endpoint_url='{}', region_name='us-east-1', \
             aws_access_key_id='testing', aws_secret_access_key='testing')\
             .delete_object(Bucket='{BUCKET}', Key='{key}')",
            self.endpoint
        );
        let out = Command::new("python3")
            .args(["-c", &script])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn get(c: &Cluster, key: &Path, archive: &str, out: &Path) -> std::process::Output {
    cradle(
        &c.nodes[0].api,
        key,
        &[
            "archive",
            "get",
            archive,
            "--purpose",
            "PATRQT",
            "--out",
            out.to_str().unwrap(),
        ],
    )
}

#[test]
fn archives_in_object_storage_are_served_only_whole_and_verified() {
    let mut s3 = S3Server::start();
    let mut c = Cluster::write(4, &[]).unwrap();
    let home = c.nodes[0].home.clone();
    let path = home.join("config.toml");
    let mut config = cradle_genesis::config::NodeConfig::load(&path).unwrap();
    config.archives.s3 = Some(cradle_genesis::config::S3Config {
        endpoint: s3.endpoint.clone(),
        bucket: BUCKET.into(),
        region: "us-east-1".into(),
        prefix: "county-hospital-1".into(),
        credentials_file: Some("s3-credentials".into()),
    });
    config.save(&path).unwrap();
    let creds = home.join("s3-credentials");
    std::fs::write(
        &creds,
        "access_key_id = \"testing\"\nsecret_access_key = \"not-a-real-secret\"\n",
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&creds, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    for i in 0..4 {
        c.start_node(i).unwrap();
    }
    for i in 0..4 {
        c.wait_height(i, 1, WAIT).unwrap();
    }

    // Up as a multipart upload into the bucket, nothing under the data directory; back whole.
    let work = c.dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let record = work.join("scan.bin");
    let mut bytes = vec![0u8; RECORD_BYTES];
    getrandom::fill(&mut bytes).unwrap();
    std::fs::write(&record, &bytes).unwrap();
    let mother = mother_with_archive(&c, &work, 0, &record);
    let objects = home.join("data/archives/objects");
    assert_eq!(std::fs::read_dir(&objects).map_or(0, |d| d.count()), 0);
    let listing =
        String::from_utf8(s3.request("GET", &format!("/{BUCKET}?list-type=2"), None).1).unwrap();
    let key_at = listing
        .find("county-hospital-1/objects/")
        .expect("the object in the bucket");
    let object_key: String = listing[key_at..]
        .chars()
        .take_while(|c| *c != '<')
        .collect();
    let mine = work.join("mine.bin");
    ok(get(&c, &mother.key, &mother.archive, &mine));
    assert!(
        std::fs::read(&mine).unwrap() == bytes,
        "the record came back altered"
    );
    let log = std::fs::read_to_string(home.join("node.log")).unwrap();
    assert!(
        !log.contains("not-a-real-secret"),
        "the node logged its S3 secret"
    );

    // A damaged object is never served as the archive; nothing is written.
    let (_, original) = s3.request("GET", &format!("/{BUCKET}/{object_key}"), None);
    assert!(original.len() > bytes.len(), "the object is the ciphertext");
    let mut damaged = original.clone();
    damaged[1000] ^= 0x80;
    assert_eq!(
        s3.request("PUT", &format!("/{BUCKET}/{object_key}"), Some(&damaged))
            .0,
        200
    );
    let out = work.join("damaged.bin");
    let failed = get(&c, &mother.key, &mother.archive, &out);
    assert_eq!(failed.status.code(), Some(1), "a damaged object was served");
    assert!(!out.exists());

    // A missing object: refused before anything is recorded.
    s3.delete(&object_key);
    assert_eq!(
        s3.request("GET", &format!("/{BUCKET}/{object_key}"), None)
            .0,
        404
    );
    let missing = get(&c, &mother.key, &mother.archive, &out);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&missing.stderr)
            .contains("does not hold this archive's ciphertext"),
        "{}",
        String::from_utf8_lossy(&missing.stderr)
    );
    assert!(!out.exists());
    assert_eq!(
        s3.request("PUT", &format!("/{BUCKET}/{object_key}"), Some(&original))
            .0,
        200
    );

    // The server stops mid-transfer: the download ends short or with an error, and a client's
    // get writes nothing.
    let mut download = cradle_tests::fetch::download(&c, 0, &mother.key, &mother.archive);
    let mut first = vec![0u8; 256 * 1024];
    download.read_exact(&mut first).unwrap();
    s3.stop();
    let mut rest = Vec::new();
    let ended = download.read_to_end(&mut rest);
    assert!(
        ended.is_err() || first.len() + rest.len() < original.len(),
        "a download outlived its object storage"
    );
    let out = work.join("after-stop.bin");
    assert_eq!(
        get(&c, &mother.key, &mother.archive, &out).status.code(),
        Some(1)
    );
    assert!(!out.exists());

    // An upload while the server is down fails with a reason; nothing is registered.
    let put = member_upload(&c, 0, &record, &mother.public);
    assert_eq!(put.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&put.stderr).contains("object storage"),
        "{}",
        String::from_utf8_lossy(&put.stderr)
    );
    let archives = c
        .client(0)
        .get_json(&format!(
            "/v1/patients/{}/archives",
            cradle_genesis::keyfile::read_key_file(&mother.key)
                .unwrap()
                .public_key()
                .to_hex()
        ))
        .unwrap();
    assert_eq!(archives["archives"].as_array().unwrap().len(), 1);
}
