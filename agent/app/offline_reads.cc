#include "agent/app/offline_reads.h"

#include <algorithm>
#include <array>
#include <fstream>
#include <map>
#include <sstream>

#include "common/crc32c.h"

namespace citywatch::agent {

std::string OfflineReads::identity(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return {};
  // The CRC of the first 1 MiB, read 64 KiB at a time: a 1 MiB buffer cost a start 256 page
  // faults for each of the three times a run asks.
  constexpr std::size_t kHead = std::size_t{1} << 20;
  std::array<char, 65536> buf;
  std::uint32_t crc = 0;
  for (std::size_t done = 0; done < kHead && in;) {
    in.read(buf.data(), static_cast<std::streamsize>(std::min(buf.size(), kHead - done)));
    const auto n = static_cast<std::size_t>(in.gcount());
    crc = crc32c_extend(crc, buf.data(), n);
    done += n;
  }
  std::error_code ec;
  const auto size = std::filesystem::file_size(file, ec);
  if (ec) return {};
  char hex[9];
  std::snprintf(hex, sizeof hex, "%08x", crc);
  return std::to_string(size) + "-" + hex;
}

const std::string& OfflineReads::known_identity(const std::string& file) const {
  auto it = identities_.find(file);
  if (it == identities_.end()) it = identities_.emplace(file, identity(file)).first;
  return it->second;
}

Status OfflineReads::check(const std::vector<std::string>& files) const {
  std::ifstream in(ledger_);
  std::map<std::string, std::string> last;  // identity -> "started" | "done"
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string what, id;
    if (f >> what >> id) last[id] = what;
  }
  std::string errors;
  std::map<std::string, const std::string*> listed;  // identity -> the first file with it
  for (const std::string& file : files) {
    const std::string& id = known_identity(file);
    if (id.empty()) return Status::error(file + ": cannot read it");
    if (const auto [first, fresh] = listed.emplace(id, &file); !fresh) {
      errors += (errors.empty() ? "" : "\n") + file + ": the same capture as " + *first->second +
                " (same size and first MiB), given twice; reading both would count its "
                "traffic twice (--reread to do it anyway)";
      continue;
    }
    auto it = last.find(id);
    if (it == last.end()) continue;
    errors += (errors.empty() ? "" : "\n") + file +
              (it->second == "done"
                   ? ": already read into this agent's spool, and every batch of it acked by the "
                     "collector"
                   : ": an earlier run stopped before the collector acked all of it; what it "
                     "read is in the spool (the agent delivers it at its next start) or "
                     "already at the collector") +
              "; reading it again would count its traffic twice (--reread to do it anyway; " +
              "ledger: " + ledger_.string() + ")";
  }
  return errors.empty() ? Status::ok() : Status::error(errors);
}

Status OfflineReads::append(const char* what, const std::vector<std::string>& files) const {
  std::error_code ec;
  std::filesystem::create_directories(ledger_.parent_path(), ec);
  std::ofstream out(ledger_, std::ios::app);
  for (const std::string& file : files) {
    const std::string& id = known_identity(file);
    if (!id.empty()) out << what << ' ' << id << ' ' << file << '\n';
  }
  out.flush();
  if (!out) return Status::error(ledger_.string() + ": cannot record the files read");
  return Status::ok();
}

Status OfflineReads::mark_started(const std::vector<std::string>& files) const {
  return append("started", files);
}

Status OfflineReads::mark_done(const std::vector<std::string>& files) const {
  return append("done", files);
}

}  // namespace citywatch::agent
