//! Every tally split in two and merged equals the tally of the whole list: what lets each
//! address family be counted on its own thread and the counting commands keep no socket while
//! saying what a listing of the same sockets says.

use std::collections::BTreeSet;
use std::sync::Arc;

use proptest::prelude::*;
use webui_doctor_core::analysis::{ByPort, GroupBy, Grouping, Summary, Urgent, most_urgent};
use webui_doctor_core::diagnose::{Diagnosis, Facts};
use webui_doctor_core::gate::ServerSide;
use webui_doctor_core::model::*;
use webui_doctor_core::tally::Tally;

/// A socket from a few small numbers: state, timer and probes, local and peer port, queued,
/// owner, send queue, idle time, cgroup.
type Seed = (u8, u8, u32, u16, u16, bool, u8, u32, u64, u8);

fn socket(i: usize, (state, timer, probes, local, peer, queued, owner, send_q, idle, cgroup): Seed) -> Socket {
    let local = std::net::SocketAddr::from(([127, 0, 0, 1], 8000 + local));
    let peer = std::net::SocketAddr::from(([127, 0, 0, (peer % 5) as u8 + 1], 40000 + peer));
    let mut s = Socket::new(TcpState::from_code(state).unwrap(), local, peer);
    s.inode = i as u64 + 1;
    s.timer = TimerKind::from_code(timer).map(|kind| Timer { kind, expires_ms: 1, probes });
    s.queued = queued;
    s.process = (owner > 0).then(|| Process { pid: u32::from(owner), comm: format!("p{owner}") });
    s.send_q = send_q;
    s.idle = Some(Idle { last_recv_ms: idle, last_send_ms: idle / 2 });
    s.details.cgroup = (cgroup > 0).then(|| Arc::from(format!("/c{cgroup}").as_str()));
    s
}

fn seeds() -> impl Strategy<Value = Vec<Seed>> {
    proptest::collection::vec(
        // Mostly established and CLOSE-WAIT, so every finding's examples overflow their bound.
        (
            prop_oneof![4 => Just(1u8), 2 => Just(8u8), 3 => 1u8..=11],
            0u8..=5,
            0u32..6,
            0u16..4,
            0u16..30,
            any::<bool>(),
            0u8..4,
            0u32..3,
            0u64..5,
            0u8..3,
        ),
        0..400,
    )
}

/// `make()` over `sockets` at once, and over the two halves at `cut` merged.
fn whole_and_halves<T: Tally>(make: impl Fn() -> T, sockets: &[Socket], cut: usize) -> (T, T) {
    let cut = cut.min(sockets.len());
    let mut first = make().over(&sockets[..cut]);
    first.merge(make().over(&sockets[cut..]));
    (make().over(sockets), first)
}

proptest! {
    #[test]
    fn merged_halves_are_the_whole(list in seeds(), cut in 0usize..420, n in 0usize..12) {
        let sockets: Vec<Socket> = list.into_iter().enumerate().map(|(i, s)| socket(i, s)).collect();
        let listening: BTreeSet<u16> = [8000, 8002].into();
        let facts = Facts {
            listening: listening.clone(),
            sysctls: Some(KeepaliveSysctls { time_s: 7200, intvl_s: 75, probes: 9 }),
            processes_joined: true,
            processes: (1..4).map(|pid| ProcessStats {
                pid,
                comm: format!("p{pid}"),
                open_files: 100,
                socket_files: 90,
                file_limit: Some(110),
                threads: Some(200),
            }).collect(),
            ..Facts::default()
        };

        let (whole, halves) = whole_and_halves(Summary::default, &sockets, cut);
        prop_assert_eq!(whole, halves);

        let (whole, halves) = whole_and_halves(|| Diagnosis::new(&facts), &sockets, cut);
        prop_assert_eq!(whole.findings(&facts), halves.findings(&facts));

        for by in [GroupBy::Process, GroupBy::Port, GroupBy::Peer, GroupBy::Cgroup] {
            let (whole, halves) = whole_and_halves(|| Grouping::new(by, listening.clone()), &sockets, cut);
            prop_assert_eq!(whole.groups(&facts.processes), halves.groups(&facts.processes));
        }

        let (whole, halves) = whole_and_halves(|| ByPort::new(listening.clone(), true), &sockets, cut);
        prop_assert_eq!(whole.listening_owners(&facts.processes, None), halves.listening_owners(&facts.processes, None));
        prop_assert_eq!(&whole.ports, &halves.ports);
        prop_assert_eq!(&whole.cgroups, &halves.cgroups);
        prop_assert_eq!(&whole.ports, &Summary::by_port(&sockets, &listening));

        // The n most urgent, counted, are most_urgent's n of the stored list, in its order.
        let (whole, halves) = whole_and_halves(|| Urgent::new(n), &sockets, cut);
        let want: Vec<u64> = most_urgent(&sockets, n).iter().map(|s| s.inode).collect();
        prop_assert_eq!(whole.seen(), sockets.len());
        prop_assert_eq!(halves.seen(), sockets.len());
        prop_assert_eq!(whole.sockets().iter().map(|s| s.inode).collect::<Vec<_>>(), want.clone());
        prop_assert_eq!(halves.sockets().iter().map(|s| s.inode).collect::<Vec<_>>(), want);

        let (whole, halves) = whole_and_halves(|| ServerSide::new(listening.clone(), 15), &sockets, cut);
        prop_assert_eq!(whole.bounds, halves.bounds);
    }
}
