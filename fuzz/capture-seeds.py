#!/usr/bin/env python3
"""Captures real inputs of this machine as fuzzing seeds: /proc/net/tcp{,6} and the raw
datagrams of a NETLINK_SOCK_DIAG dump (the bytes webui-doctor's decoder reads). Run it as root
with some TCP sockets open, from the fuzz/ directory: python3 capture-seeds.py"""
import os, shutil, socket, struct

NETLINK_SOCK_DIAG, SOCK_DIAG_BY_FAMILY = 4, 20
NLM_F_REQUEST, NLM_F_DUMP = 1, 0x300

shutil.copy("/proc/net/tcp", "seeds/procfs/proc-net-tcp")
shutil.copy("/proc/net/tcp6", "seeds/procfs/proc-net-tcp6")

for family, name in ((socket.AF_INET, "inet"), (socket.AF_INET6, "inet6")):
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_SOCK_DIAG)
    # inet_diag_req_v2: family, protocol, ext (INET_DIAG_INFO), pad, states, inet_diag_sockid
    req = struct.pack("=BBBBI", family, socket.IPPROTO_TCP, 1 << 1, 0, 0xFFF) + bytes(48)
    s.send(struct.pack("=IHHII", 16 + len(req), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, 1, 0) + req)
    for i in range(4):
        data = s.recv(65536)
        with open(f"seeds/sock_diag/{name}-datagram-{i}", "wb") as f:
            f.write(data)
        if struct.unpack_from("=H", data, 4)[0] == 3:  # NLMSG_DONE
            break
    s.close()
