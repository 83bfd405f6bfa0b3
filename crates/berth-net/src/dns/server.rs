//! The server: its thread and runtime, and the tasks serving each attached container.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, RwLock};
use std::time::Duration;

use hickory_proto::op::ResponseCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::runtime::Handle;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::forward::forward;
use super::netns::{listen_sockets, Netns, NsError};
use super::records::Records;
use super::resolver::{self, Transport, Verdict, UDP_PAYLOAD};
use super::{Attachment, DnsConfig, DnsError, Upstream};

/// Packets a container's UDP loop handles before letting other containers' tasks run.
const BATCH: usize = 16;
/// How long `detach` waits for a container's tasks to close its sockets.
const DETACH_WAIT: Duration = Duration::from_secs(2);

/// The embedded DNS server (see the module documentation). Dropping it stops the server's
/// thread and closes every socket it serves.
pub struct DnsServer {
    records: Arc<Records>,
    cfg: Arc<DnsConfig>,
    rt: Handle,
    rotation: Arc<AtomicUsize>,
    attached: Mutex<HashMap<String, Attached>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

struct Attached {
    served: Arc<Served>,
    /// Disconnected once every task of the container has ended (each holds a `Live`).
    done: mpsc::Receiver<()>,
}

/// Held by every task of a container; the container is fully detached when all are dropped.
#[derive(Clone)]
struct Live(#[allow(dead_code)] mpsc::Sender<()>);

#[derive(Debug, Clone)]
struct Forwarding {
    upstreams: Vec<Upstream>,
    external: bool,
}

/// One served container.
struct Served {
    id: String,
    netns: Netns,
    forwarding: RwLock<Forwarding>,
    fwd_slots: Arc<Semaphore>,
    tcp_slots: Arc<Semaphore>,
    records: Arc<Records>,
    cfg: Arc<DnsConfig>,
    rotation: Arc<AtomicUsize>,
    cancel: CancellationToken,
}

impl DnsServer {
    /// Starts the server's thread. It serves nothing until containers are attached.
    pub fn start(cfg: DnsConfig) -> Result<DnsServer, DnsError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(DnsError::Start)?;
        let handle = rt.handle().clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("berth-dns".into())
            .spawn(move || {
                rt.block_on(async {
                    let _ = rx.await;
                });
            })
            .map_err(DnsError::Start)?;
        Ok(DnsServer {
            records: Arc::new(Records::new()),
            cfg: Arc::new(cfg),
            rt: handle,
            rotation: Arc::new(AtomicUsize::new(0)),
            attached: Mutex::new(HashMap::new()),
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }

    /// The record model the server answers from; `net` updates it.
    pub fn records(&self) -> &Arc<Records> {
        &self.records
    }

    /// Serves the container: opens 127.0.0.11:53 (UDP and TCP) in its network namespace.
    /// Attaching an attached container again with the same namespace only updates its
    /// upstreams (the sockets stay); with another namespace, it is served there instead.
    /// After a daemon restart, attach every running container again: the sockets of the old
    /// daemon closed with it. Blocks for well under a millisecond (one short thread).
    pub fn attach(&self, a: Attachment) -> Result<(), DnsError> {
        let netns = Netns::open(&a.netns).map_err(|source| DnsError::OpenNetns {
            container: a.container_id.clone(),
            path: a.netns.clone(),
            source,
        })?;
        let forwarding = Forwarding {
            upstreams: a.upstreams.clone(),
            external: a.external_access,
        };
        {
            let attached = lock(&self.attached);
            if let Some(cur) = attached.get(&a.container_id) {
                if cur.served.netns.same_as(&netns) {
                    *write(&cur.served.forwarding) = forwarding;
                    return Ok(());
                }
            }
        }
        self.detach(&a.container_id);

        let listen = self.cfg.listen;
        let (udp, tcp) = netns
            .run(move || listen_sockets(listen))
            .map_err(|e| match e {
                NsError::Enter(source) => DnsError::EnterNetns {
                    container: a.container_id.clone(),
                    path: a.netns.clone(),
                    source,
                },
                NsError::Op(source) => DnsError::Listen {
                    container: a.container_id.clone(),
                    addr: listen,
                    source,
                },
            })?;
        let listen_err = |source| DnsError::Listen {
            container: a.container_id.clone(),
            addr: listen,
            source,
        };
        let (udp, tcp) = {
            let _guard = self.rt.enter();
            (
                UdpSocket::from_std(udp).map_err(listen_err)?,
                TcpListener::from_std(tcp).map_err(listen_err)?,
            )
        };
        let served = Arc::new(Served {
            id: a.container_id.clone(),
            netns,
            forwarding: RwLock::new(forwarding),
            fwd_slots: Arc::new(Semaphore::new(self.cfg.max_forwards_per_container)),
            tcp_slots: Arc::new(Semaphore::new(self.cfg.max_tcp_per_container)),
            records: Arc::clone(&self.records),
            cfg: Arc::clone(&self.cfg),
            rotation: Arc::clone(&self.rotation),
            cancel: CancellationToken::new(),
        });
        let (tx, done) = mpsc::channel();
        let live = Live(tx);
        self.rt
            .spawn(serve_udp(Arc::clone(&served), Arc::new(udp), live.clone()));
        self.rt.spawn(serve_tcp(Arc::clone(&served), tcp, live));
        tracing::debug!(container = %a.container_id, netns = %served.netns.path().display(), "dns: serving");
        lock(&self.attached).insert(a.container_id, Attached { served, done });
        Ok(())
    }

    /// Stops serving the container and waits (briefly) until its sockets are closed. Its
    /// records are `net`'s to remove. Detaching a container that is not attached does nothing.
    pub fn detach(&self, container_id: &str) {
        let Some(att) = lock(&self.attached).remove(container_id) else {
            return;
        };
        att.served.cancel.cancel();
        drop(att.served);
        if let Err(mpsc::RecvTimeoutError::Timeout) = att.done.recv_timeout(DETACH_WAIT) {
            tracing::warn!(container = %container_id, "dns: the server's tasks of the container did not end in time");
        }
    }

    /// The containers being served.
    pub fn attached(&self) -> Vec<String> {
        lock(&self.attached).keys().cloned().collect()
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        for (_, att) in lock(&self.attached).drain() {
            att.served.cancel.cancel();
        }
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(m: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(|p| p.into_inner())
}

impl Served {
    fn forwarding(&self) -> Forwarding {
        self.forwarding
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn decide(&self, raw: &[u8], transport: Transport) -> Verdict {
        let snap = self.records.snapshot();
        let rotate = self.rotation.fetch_add(1, Ordering::Relaxed);
        resolver::handle(raw, transport, &self.id, &snap, rotate)
    }

    /// Forwards one query; the answer, or SERVFAIL when no upstream answered.
    async fn forward(
        &self,
        raw: &[u8],
        query: &hickory_proto::op::Message,
        transport: Transport,
    ) -> Option<Vec<u8>> {
        let f = self.forwarding();
        let answer = forward(
            raw,
            query,
            transport,
            &f.upstreams,
            f.external,
            &self.netns,
            self.cfg.upstream_timeout,
        )
        .await;
        answer.or_else(|| resolver::failure(query, ResponseCode::ServFail, transport))
    }
}

/// `Live` tokens are dropped only after the sockets: `detach` returns once all are gone, and
/// then the address can be bound again.
async fn serve_udp(s: Arc<Served>, sock: Arc<UdpSocket>, live: Live) {
    udp_loop(&s, &sock, &live).await;
    drop(sock);
    drop(live);
}

async fn udp_loop(s: &Arc<Served>, sock: &Arc<UdpSocket>, live: &Live) {
    // One byte more than the largest query accepted, to tell an oversized datagram.
    let mut buf = vec![0u8; UDP_PAYLOAD + 1];
    let mut handled = 0usize;
    loop {
        let (n, peer) = tokio::select! {
            _ = s.cancel.cancelled() => return,
            r = sock.recv_from(&mut buf) => match r {
                Ok(r) => r,
                Err(e) => {
                    tracing::debug!(container = %s.id, error = %e, "dns: udp receive failed");
                    tokio::task::yield_now().await;
                    continue;
                }
            },
        };
        if n <= UDP_PAYLOAD {
            handle_udp(s, sock, &buf[..n], peer, live);
        }
        handled += 1;
        if handled.is_multiple_of(BATCH) {
            tokio::task::yield_now().await;
        }
    }
}

fn handle_udp(s: &Arc<Served>, sock: &Arc<UdpSocket>, raw: &[u8], peer: SocketAddr, live: &Live) {
    match s.decide(raw, Transport::Udp) {
        Verdict::Reply(b) => {
            // Never wait on a client: if its socket is full, the answer is dropped.
            let _ = sock.try_send_to(&b, peer);
        }
        Verdict::Drop => {}
        Verdict::Forward(query) => match Arc::clone(&s.fwd_slots).try_acquire_owned() {
            Ok(permit) => {
                let (s, sock, raw, live) =
                    (Arc::clone(s), Arc::clone(sock), raw.to_vec(), live.clone());
                tokio::spawn(async move {
                    let answer = tokio::select! {
                        _ = s.cancel.cancelled() => None,
                        a = s.forward(&raw, &query, Transport::Udp) => a,
                    };
                    if let Some(b) = answer {
                        let _ = sock.try_send_to(&b, peer);
                    }
                    drop((sock, permit));
                    drop(live);
                });
            }
            Err(_) => {
                tracing::debug!(container = %s.id, "dns: too many queries in flight upstream, refusing");
                if let Some(b) = resolver::failure(&query, ResponseCode::Refused, Transport::Udp) {
                    let _ = sock.try_send_to(&b, peer);
                }
            }
        },
    }
}

async fn serve_tcp(s: Arc<Served>, listener: TcpListener, live: Live) {
    tcp_loop(&s, &listener, &live).await;
    drop(listener);
    drop(live);
}

async fn tcp_loop(s: &Arc<Served>, listener: &TcpListener, live: &Live) {
    loop {
        let stream = tokio::select! {
            _ = s.cancel.cancelled() => return,
            r = listener.accept() => match r {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of descriptors and the like: back off instead of spinning.
                    tracing::debug!(container = %s.id, error = %e, "dns: tcp accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = Arc::clone(&s.tcp_slots).try_acquire_owned() else {
            tracing::debug!(container = %s.id, "dns: too many tcp connections, closing one");
            continue;
        };
        let (s2, live2) = (Arc::clone(s), live.clone());
        tokio::spawn(async move {
            let mut stream = stream;
            tokio::select! {
                _ = s2.cancel.cancelled() => {}
                _ = serve_tcp_conn(&s2, &mut stream) => {}
            }
            drop((stream, permit));
            drop(live2);
        });
    }
}

/// Serves queries on one TCP connection, one after the other, until the client closes it,
/// sends garbage framing or stays idle too long.
async fn serve_tcp_conn(s: &Served, stream: &mut TcpStream) {
    let idle = s.cfg.tcp_idle_timeout;
    loop {
        let mut len = [0u8; 2];
        if !matches!(
            tokio::time::timeout(idle, stream.read_exact(&mut len)).await,
            Ok(Ok(_))
        ) {
            return;
        }
        let n = usize::from(u16::from_be_bytes(len));
        if n == 0 {
            return;
        }
        let mut raw = vec![0u8; n];
        if !matches!(
            tokio::time::timeout(idle, stream.read_exact(&mut raw)).await,
            Ok(Ok(_))
        ) {
            return;
        }
        let answer = match s.decide(&raw, Transport::Tcp) {
            Verdict::Reply(b) => Some(b),
            Verdict::Drop => None,
            Verdict::Forward(query) => match Arc::clone(&s.fwd_slots).try_acquire_owned() {
                Ok(_permit) => s.forward(&raw, &query, Transport::Tcp).await,
                Err(_) => resolver::failure(&query, ResponseCode::Refused, Transport::Tcp),
            },
        };
        let Some(b) = answer else { continue };
        let Ok(len) = u16::try_from(b.len()) else {
            return;
        };
        let mut out = Vec::with_capacity(b.len() + 2);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&b);
        if !matches!(
            tokio::time::timeout(idle, stream.write_all(&out)).await,
            Ok(Ok(_))
        ) {
            return;
        }
    }
}
