// libFuzzer target: an address list file (a blocklist or threat feed an operator drops in
// rules/lists/). Each line goes through IpSet::add; the set is built and queried (contains
// and the entry lookup) at fixed edges; the same bytes are also loaded as a file in each
// format (plain, Spamhaus DROP, Suricata iprep: comments, references, scores, file:line
// errors) and looked up. Seeds: the shipped lists (scripts/fuzz.sh).
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "collector/rules_engine/ip_set.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using citywatch::IpAddr;
  using citywatch::collector::IpSet;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  IpSet set;
  std::size_t start = 0;
  while (start <= text.size()) {
    const std::size_t end = std::min(text.find('\n', start), text.size());
    (void)set.add(text.substr(start, end - start));
    start = end + 1;
  }
  set.build();
  const std::uint8_t v4[4][4] = {
      {0, 0, 0, 0}, {10, 1, 2, 3}, {192, 0, 2, 255}, {255, 255, 255, 255}};
  std::uint8_t v6a[16] = {0x20, 0x01, 0x0d, 0xb8};
  std::uint8_t v6b[16];
  for (auto& b : v6b) b = 0xff;
  const auto probe = [&](const IpSet& s) {
    citywatch::collector::ListMatch m;
    for (const auto& a : v4) {
      const bool in = s.contains(IpAddr::v4(a));
      if (s.lookup(IpAddr::v4(a), m) != in) __builtin_trap();  // the two must agree
    }
    for (const std::uint8_t* b : {v6a, v6b}) {
      const bool in = s.contains(IpAddr::v6(b));
      if (s.lookup(IpAddr::v6(b), m) != in) __builtin_trap();
    }
  };
  probe(set);

  static const std::filesystem::path file =
      std::filesystem::temp_directory_path() / ("cw-list-fuzz-" + std::to_string(::getpid()));
  {
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  using citywatch::collector::ListFormat;
  for (const ListFormat f : {ListFormat::kPlain, ListFormat::kSpamhausDrop, ListFormat::kIprep}) {
    IpSet loaded;
    if (IpSet::load_file(file.string(), loaded, f, 10)) probe(loaded);
  }
  return 0;
}
