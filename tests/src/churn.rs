//! A TCP workload on loopback, shared by `tcp-churn` and `bench-tcp`: an
//! echo server thread and a client that opens one connection at a time,
//! sends some bytes, reads them back and closes.

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    thread,
    time::Duration,
};

/// Serves `listener` on a new thread: for each connection, reads `bytes`
/// bytes and echoes them back.
pub fn spawn_echo_server(listener: TcpListener, bytes: usize) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        let cap = buf.len();
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut got = 0;
            while got < bytes {
                match s.read(&mut buf[..(bytes - got).min(cap)]) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got += n,
                }
            }
            let _ = s.write_all(&vec![b'y'; got]);
        }
    })
}

/// One client connection: connect, send `payload`, read as many bytes
/// back into `back`, stay open `hold`, close.
pub fn connect_once(addr: SocketAddr, payload: &[u8], back: &mut [u8], hold: Duration) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.write_all(payload).expect("write");
    s.read_exact(back).expect("read echo");
    if !hold.is_zero() {
        thread::sleep(hold);
    }
}

/// Pins the calling thread to `cpu`.
pub fn pin_to_cpu(cpu: usize) -> std::io::Result<()> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET and
    // sched_setaffinity only touch the set we pass.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Outbound connections eunomia's TCP probe has counted as opened in
/// `hotpath`'s flow table, to port `dport` or (None) to any port.
pub fn counted_connects(hotpath: &mut eunomia::hotpath::Hotpath, dport: Option<u16>) -> u64 {
    use aya::maps::{HashMap as BpfHashMap, MapData};
    use hotpath_common::{DIR_ACTIVE, FlowKey, FlowStats, TCP_FLOWS_MAP};

    let map = hotpath
        .ebpf_mut()
        .map_mut(TCP_FLOWS_MAP)
        .expect("the TCP flow map");
    let flows = BpfHashMap::<&mut MapData, FlowKey, FlowStats>::try_from(map)
        .expect("the TCP flow map is a hash of FlowKey → FlowStats");
    flows
        .iter()
        .filter_map(Result::ok)
        .filter(|(k, _)| k.direction == DIR_ACTIVE && dport.is_none_or(|p| k.dport == p))
        .map(|(_, s)| s.opened)
        .sum()
}
