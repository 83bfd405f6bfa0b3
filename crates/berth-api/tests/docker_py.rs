//! docker-py 5.0.3 (Debian's python3-docker, what docker-compose 1.29.2 uses) against the
//! server with the fake backend. Skipped (with a notice) only when it is not installed.

mod common;

use std::path::Path;

use common::*;

const PYTHON: &str = "/usr/bin/python3";

const SCRIPT: &str = r#"
import sys, docker
api = docker.APIClient(base_url=sys.argv[1], version="auto")
assert api.api_version == "1.43", api.api_version
assert api.version()["ApiVersion"] == "1.43"

# The compose create: nulls in the healthcheck, labels, networking config.
hc = {"Test": ["CMD", "true"], "Interval": 1000000000, "Timeout": None, "Retries": None, "StartPeriod": None}
c = api.create_container("busybox", ["echo", "from-py"], name="trcompose_db_1",
                         labels={"com.docker.compose.project": "trcompose", "com.docker.compose.oneoff": "False"},
                         healthcheck=hc,
                         host_config=api.create_host_config(network_mode="trcompose_default", binds=[], links=[]),
                         networking_config=api.create_networking_config({"trcompose_default": api.create_endpoint_config(aliases=["db"])}))
cid = c["Id"]
assert c["Warnings"] == [], c
api.start(cid)
assert api.wait(cid)["StatusCode"] == 0
logs = api.logs(cid, stdout=True, stderr=True, timestamps=False, follow=False, tail="all")
assert logs == b"from-py\n", logs

found = api.containers(all=True, filters={"label": ["com.docker.compose.project=trcompose", "com.docker.compose.oneoff=False"]})
assert [x["Names"] for x in found] == [["/trcompose_db_1"]], found
none = api.containers(all=True, filters={"label": ["com.docker.compose.oneoff=True"]})
assert none == [], none
assert api.inspect_container(cid)["Name"] == "/trcompose_db_1"

try:
    api.inspect_container("doesnotexist")
    raise SystemExit("expected NotFound")
except docker.errors.NotFound as e:
    assert "No such container: doesnotexist" in str(e), str(e)

api.remove_container(cid, v=False, link=False, force=False)
print("docker-py ok")
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_py_compose_calls() {
    let has_docker_py = Path::new(PYTHON).exists()
        && std::process::Command::new(PYTHON)
            .args(["-c", "import docker"])
            .output()
            .is_ok_and(|o| o.status.success());
    if !has_docker_py {
        eprintln!("NOTICE: {PYTHON} with docker-py not installed; the docker-py compatibility test did not run");
        return;
    }
    let fake = Fake::new();
    let server = TestServer::start(FakeBackend(fake.clone())).await;
    let out = tokio::time::timeout(
        T,
        tokio::process::Command::new(PYTHON)
            .args(["-c", SCRIPT, &server.host()])
            .output(),
    )
    .await
    .expect("python timed out")
    .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("docker-py ok"), "{text}");
    let calls = fake.calls();
    assert!(
        calls
            .iter()
            .any(|c| c.starts_with("container_remove ") && c.contains("force: false")),
        "{calls:?}"
    );
}
