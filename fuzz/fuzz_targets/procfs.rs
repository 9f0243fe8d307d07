//! `/proc/net/tcp{,6}` text: any bytes give sockets or a parse error naming the line.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use webui_doctor::filter::Filter;
use webui_doctor::model::{Extras, Family};
use webui_doctor::source::procfs::parse_table;

fuzz_target!(|data: &[u8]| {
    // Every optional field asked for, so the rto column is parsed too.
    let all = Extras { info: true, memory: true, cgroup: true, no_tcp_info: false };
    for family in [Family::Inet, Family::Inet6] {
        let mut out = Vec::new();
        if parse_table(data, Path::new("tcp"), family, 100, &Filter::default(), all, &mut out).is_ok() {
            // Whatever was accepted renders: no panic further down the pipeline either.
            let _ = webui_doctor::analysis::Summary::of(&out);
            let _ = webui_doctor::diagnose::diagnose(&out, &webui_doctor::diagnose::Facts::default());
        }
    }
});
