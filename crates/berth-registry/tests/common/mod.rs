//! An in-process registry on 127.0.0.1:<random port> and a small HTTP client for the tests.
#![allow(dead_code)]

use std::sync::Arc;

use berth_image::digest::Digest;
use berth_registry::server::{self, Registry, RegistryConfig};
use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

pub struct TestRegistry {
    pub base: String,
    pub dir: tempfile::TempDir,
    pub registry: Option<Arc<Registry>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    client: Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// The first error code of a distribution error body.
    pub fn code(&self) -> String {
        self.json()["errors"][0]["code"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }
}

impl TestRegistry {
    pub async fn start(adjust: impl FnOnce(&mut RegistryConfig)) -> TestRegistry {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(dir, adjust, false).await
    }

    pub async fn start_in(
        dir: tempfile::TempDir,
        adjust: impl FnOnce(&mut RegistryConfig),
        h2: bool,
    ) -> TestRegistry {
        let mut config = RegistryConfig {
            root: dir.path().join("root"),
            addr: "127.0.0.1:0".into(),
            ..Default::default()
        };
        adjust(&mut config);
        let registry = Arc::new(Registry::open(config).unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let r2 = registry.clone();
        let task = tokio::spawn(async move {
            server::serve(r2, listener, None, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        let mut b = Client::builder(TokioExecutor::new());
        b.http2_only(h2);
        TestRegistry {
            base: format!("http://{addr}"),
            dir,
            registry: Some(registry),
            stop: Some(tx),
            task: Some(task),
            client: b.build_http(),
        }
    }

    /// Stops the server and hands back its directory (for restarts on the same root).
    pub async fn stop(mut self) -> tempfile::TempDir {
        self.shutdown().await;
        let dir = tempfile::tempdir().unwrap();
        std::mem::replace(&mut self.dir, dir)
    }

    async fn shutdown(&mut self) {
        self.registry = None;
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }

    pub fn root(&self) -> std::path::PathBuf {
        self.dir.path().join("root")
    }

    pub async fn req(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Resp {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        };
        let mut b = Request::builder().method(method).uri(url);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let resp = self
            .client
            .request(b.body(Full::new(body.into())).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        Resp {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.req(Method::GET, path, &[], Bytes::new()).await
    }

    pub async fn head(&self, path: &str) -> Resp {
        self.req(Method::HEAD, path, &[], Bytes::new()).await
    }

    /// Monolithic upload; asserts 201.
    pub async fn push_blob(&self, repo: &str, data: &[u8]) -> Digest {
        let d = Digest::sha256_of(data);
        let r = self
            .req(
                Method::POST,
                &format!("/v2/{repo}/blobs/uploads/?digest={d}"),
                &[],
                Bytes::copy_from_slice(data),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        d
    }

    /// Pushes a config and one layer and an OCI manifest referencing them under `tag`.
    pub async fn push_image(&self, repo: &str, tag: &str, seed: &str) -> (Digest, Vec<u8>) {
        let config = format!("{{\"architecture\":\"amd64\",\"os\":\"linux\",\"seed\":\"{seed}\"}}");
        let layer = format!("layer of {seed}");
        let cd = self.push_blob(repo, config.as_bytes()).await;
        let ld = self.push_blob(repo, layer.as_bytes()).await;
        let m = image_manifest(&cd, config.len(), &ld, layer.len(), None);
        let r = self
            .req(
                Method::PUT,
                &format!("/v2/{repo}/manifests/{tag}"),
                &[("content-type", OCI_MANIFEST)],
                m.clone(),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        (Digest::sha256_of(&m), m)
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

pub fn image_manifest(
    config: &Digest,
    config_size: usize,
    layer: &Digest,
    layer_size: usize,
    extra: Option<&str>,
) -> Vec<u8> {
    let extra = extra.map(|e| format!(",{e}")).unwrap_or_default();
    format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config}","size":{config_size}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{layer}","size":{layer_size}}}]{extra}}}"#
    )
    .into_bytes()
}
