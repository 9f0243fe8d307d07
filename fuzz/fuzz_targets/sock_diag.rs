//! A NETLINK_SOCK_DIAG reply datagram: nlmsghdr framing, inet_diag_msg, attributes, tcp_info of
//! any length. Any bytes give sockets, the end of the dump, or a typed error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use webui_doctor::filter::Filter;
use webui_doctor::model::Extras;
use webui_doctor::source::netlink::decode_batch;

fuzz_target!(|data: &[u8]| {
    let mut out = Vec::new();
    if decode_batch(
        data,
        &Filter::default(),
        Extras { info: true, memory: true, cgroup: true, no_tcp_info: false },
        &mut out,
    )
    .is_ok()
    {
        let _ = webui_doctor::analysis::Summary::of(&out);
        let _ = webui_doctor::diagnose::diagnose(&out, &webui_doctor::diagnose::Facts::default());
    }
});
