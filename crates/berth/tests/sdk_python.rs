//! A Docker SDK (Debian's python3-docker, the docker-py that docker-compose v1 uses) against
//! `berth daemon`: run, ps, inspect, logs, exec, wait, remove.

mod common;

use std::process::Command;

use common::Daemon;

const SCRIPT: &str = r#"
import sys, docker
c = docker.DockerClient(base_url=sys.argv[1], version="auto")
assert c.ping()
out = c.containers.run("busybox", ["sh", "-c", "echo from-sdk; echo err >&2"], remove=True, stderr=True)
assert b"from-sdk" in out, out
ctr = c.containers.run("busybox", ["sh", "-c", "echo started; sleep 30"], detach=True, name="sdkbox",
                       labels={"com.example": "yes"}, environment={"A": "1"})
ctr.reload()
assert ctr.status == "running", ctr.status
names = [x.name for x in c.containers.list(filters={"label": "com.example=yes"})]
assert names == ["sdkbox"], names
assert ctr.attrs["Config"]["Env"][0] == "A=1" or "A=1" in ctr.attrs["Config"]["Env"]
import time
for _ in range(100):
    if b"started" in ctr.logs():
        break
    time.sleep(0.05)
assert ctr.logs() == b"started\n", ctr.logs()
code, output = ctr.exec_run(["sh", "-c", "echo exec-out; exit 4"])
assert code == 4 and output == b"exec-out\n", (code, output)
ctr.kill()
res = ctr.wait()
assert res["StatusCode"] == 137, res
ctr.remove()
try:
    c.containers.get("sdkbox")
    raise SystemExit("still there")
except docker.errors.NotFound:
    pass
img = c.images.get("busybox")
assert "busybox:latest" in img.tags, img.tags
print("sdk-ok")
"#;

#[test]
fn docker_py_run_ps_inspect_logs_exec() {
    let d = Daemon::start();
    d.load_busybox();
    let script = d.dir.join("sdk.py");
    std::fs::write(&script, SCRIPT).unwrap();
    // Debian's python3 with Debian's python3-docker (installed by scripts/install-deps).
    let out = Command::new("/usr/bin/python3")
        .arg(&script)
        .arg(d.host())
        .output()
        .expect("python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("sdk-ok"),
        "docker-py failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
