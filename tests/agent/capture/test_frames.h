// Ethernet frame builders for the capture tests (packet events, the meter pipeline): frames
// in wire order, byte by byte, from 02:00:00:00:00:<src_last> to 02:00:00:00:00:ee, IPv4
// addresses 10.99.1.<last>.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

namespace citywatch::agent::test_frames {

// Frames in wire order, byte by byte.
struct Bytes {
  std::vector<std::byte> b;
  Bytes& u8(int v) {
    b.push_back(static_cast<std::byte>(v));
    return *this;
  }
  Bytes& u16(int v) { return u8(v >> 8 & 0xff).u8(v & 0xff); }
  Bytes& u32(std::uint32_t v) { return u16(static_cast<int>(v >> 16)).u16(v & 0xffff); }
  Bytes& raw(std::initializer_list<int> v) {
    for (int x : v) u8(x);
    return *this;
  }
  Bytes& append(const Bytes& o) {
    b.insert(b.end(), o.b.begin(), o.b.end());
    return *this;
  }
};

inline Bytes eth(int src_last, int type) {
  return Bytes().raw({2, 0, 0, 0, 0, 0xee}).raw({2, 0, 0, 0, 0, src_last}).u16(type);
}
Bytes ipv4(int proto, int l4_len, int src_last = 10, int dst_last = 20) {
  return Bytes()
      .u8(0x45)
      .u8(0)
      .u16(20 + l4_len)
      .u16(1)
      .u16(0)
      .u8(64)
      .u8(proto)
      .u16(0)
      .raw({10, 99, 1, src_last})
      .raw({10, 99, 1, dst_last});
}
inline Bytes tcp_frame(int sport, int dport, int flags, int src_last = 10, int dst_last = 20) {
  Bytes t = Bytes().u16(sport).u16(dport).u32(1).u32(0).u8(0x50).u8(flags).u16(1024).u16(0).u16(0);
  return eth(src_last, 0x0800).append(ipv4(6, 20, src_last, dst_last)).append(t);
}
inline Bytes dns_frame(bool response, int rcode, const std::string& name, int sport, int dport) {
  Bytes m;
  m.u16(0x4242)
      .u8(response ? 0x81 : 0x01)
      .u8(response ? 0x80 | rcode : 0)
      .u16(1)
      .u16(0)
      .u16(0)
      .u16(0);
  std::size_t start = 0;
  while (start < name.size()) {
    std::size_t dot = name.find('.', start);
    if (dot == std::string::npos) dot = name.size();
    m.u8(static_cast<int>(dot - start));
    for (std::size_t i = start; i < dot; ++i) m.u8(name[i]);
    start = dot + 1;
  }
  m.u8(0).u16(16).u16(1);
  const int l4 = 8 + static_cast<int>(m.b.size());
  Bytes u = Bytes().u16(sport).u16(dport).u16(l4).u16(0).append(m);
  return eth(10, 0x0800).append(ipv4(17, l4)).append(u);
}
inline Bytes arp_frame(int op, int mac_last, std::initializer_list<int> sip,
                       std::initializer_list<int> tip) {
  return eth(mac_last, 0x0806)
      .u16(1)
      .u16(0x0800)
      .u8(6)
      .u8(4)
      .u16(op)
      .raw({2, 0, 0, 0, 0, mac_last})
      .raw(sip)
      .raw({0, 0, 0, 0, 0, 0})
      .raw(tip);
}
inline Bytes udp_frame(int sport, int dport, int src_last = 10, int dst_last = 20) {
  return eth(src_last, 0x0800)
      .append(ipv4(17, 8, src_last, dst_last))
      .append(Bytes().u16(sport).u16(dport).u16(8).u16(0));
}

}  // namespace citywatch::agent::test_frames
