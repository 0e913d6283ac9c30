#include "agent/spool/spool.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <system_error>
#include <utility>

#include "common/crc32c.h"

namespace citywatch::agent {
namespace {

constexpr std::string_view kSegmentSuffix = ".spool";
constexpr std::size_t kSegmentDigits = 20;  // enough for any uint64, so names sort as numbers
constexpr const char* kCursorName = "acked";
constexpr const char* kCursorTmpName = "acked.tmp";
// Ballast: space kept for the ack cursor. With the file system full, acked segments can be
// deleted only after the cursor that acks them is written, and writing it takes a block:
// without this file a spool that filled its disk could never free it.
constexpr const char* kReserveName = "reserve";
// An emptied segment file kept for the next segment to start in (see spool.h).
constexpr const char* kSpareName = "spare";
// Follows each record written into a reused file: a length no record has, sequence 0.
constexpr std::uint32_t kEndMarkerLength = 0xffffffffu;
constexpr off_t kReserveBytes = 16 << 10;
constexpr std::uint32_t kCursorVersion = 1;
// u32 crc32c, u32 version, u64 acked, u64 last_seq, u64 stream id
constexpr std::size_t kCursorBytes = 32;

void put_le32(std::byte* p, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<std::byte>(v >> (8 * i));
}
void put_le64(std::byte* p, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<std::byte>(v >> (8 * i));
}
std::uint32_t get_le32(const std::byte* p) {
  std::uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<std::uint32_t>(p[i]);
  return v;
}
std::uint64_t get_le64(const std::byte* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<std::uint64_t>(p[i]);
  return v;
}

std::string errno_text(int err) { return std::error_code(err, std::generic_category()).message(); }

Status io_error(const std::string& what, const std::filesystem::path& path, int err) {
  return Status::error("spool: " + what + " " + path.string() + ": " + errno_text(err));
}

// Moves past n bytes already transferred: drops whole iovecs, trims the first partial one.
void advance_iov(iovec*& iov, int& iovcnt, std::size_t n) {
  while (iovcnt > 0 && n >= iov->iov_len) {
    n -= iov->iov_len;
    ++iov;
    --iovcnt;
  }
  if (iovcnt > 0) {
    iov->iov_base = static_cast<char*>(iov->iov_base) + n;
    iov->iov_len -= n;
  }
}

// Writes every byte of the iovecs at `offset`, resuming after short writes and EINTR.
// Returns 0 or an errno.
int pwritev_all(int fd, iovec* iov, int iovcnt, std::uint64_t offset) {
  while (iovcnt > 0) {
    const ssize_t n = ::pwritev(fd, iov, iovcnt, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    offset += static_cast<std::uint64_t>(n);
    advance_iov(iov, iovcnt, static_cast<std::size_t>(n));
  }
  return 0;
}

// Reads up to the iovecs' total at `offset`; returns bytes read (short only at end of file),
// or -1 with errno set.
ssize_t preadv_all(int fd, iovec* iov, int iovcnt, std::uint64_t offset) {
  ssize_t total = 0;
  while (iovcnt > 0) {
    const ssize_t n = ::preadv(fd, iov, iovcnt, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (n == 0) break;
    total += n;
    offset += static_cast<std::uint64_t>(n);
    advance_iov(iov, iovcnt, static_cast<std::size_t>(n));
  }
  return total;
}

int fdatasync_retry(int fd) {
  while (::fdatasync(fd) != 0) {
    if (errno != EINTR) return errno;
  }
  return 0;
}

// "00000000000000000042.spool" -> 42. Anything else (other lengths, signs, overflow) is not
// ours and is left alone.
bool parse_segment_name(const std::string& name, std::uint64_t& first_seq) {
  if (name.size() != kSegmentDigits + kSegmentSuffix.size()) return false;
  if (name.compare(kSegmentDigits, kSegmentSuffix.size(), kSegmentSuffix) != 0) return false;
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < kSegmentDigits; ++i) {
    const char c = name[i];
    if (c < '0' || c > '9') return false;
    const std::uint64_t d = static_cast<std::uint64_t>(c - '0');
    if (v > (std::numeric_limits<std::uint64_t>::max() - d) / 10) return false;
    v = v * 10 + d;
  }
  first_seq = v;
  return true;
}

std::string segment_name(std::uint64_t first_seq) {
  char buf[kSegmentDigits + 1];
  std::snprintf(buf, sizeof buf, "%020" PRIu64, first_seq);
  return std::string(buf) + std::string(kSegmentSuffix);
}

// Checksum over everything in the record after the crc field: length, seq, payload.
std::uint32_t record_crc(const std::byte* header, std::span<const std::byte> payload) {
  return crc32c_extend(crc32c({header + 4, Spool::kHeaderBytes - 4}), payload);
}

std::array<std::byte, Spool::kHeaderBytes> end_marker() {
  std::array<std::byte, Spool::kHeaderBytes> m{};
  put_le32(m.data() + 4, kEndMarkerLength);
  put_le32(m.data(), record_crc(m.data(), {}));
  return m;
}

// Made once, on first use: crc32c() must not run during static initialisation.
const std::array<std::byte, Spool::kHeaderBytes>& the_end_marker() {
  static const std::array<std::byte, Spool::kHeaderBytes> m = end_marker();
  return m;
}

bool is_end_marker(const std::byte* header) {
  const auto& m = the_end_marker();
  return std::equal(m.begin(), m.end(), header);
}

}  // namespace

Spool::Spool(const SpoolOptions& opts) : opts_(opts) {}

Spool::~Spool() {
  // Best effort on a clean shutdown; the owner calls sync() when it needs to know.
  if (active_fd_ >= 0) {
    if (active_dirty_) (void)fdatasync_retry(active_fd_);
    ::close(active_fd_);
  }
  if (read_fd_ >= 0) ::close(read_fd_);
  if (dir_fd_ >= 0) ::close(dir_fd_);  // also releases the directory lock
}

std::filesystem::path Spool::segment_path(std::uint64_t first_seq) const {
  return opts_.dir / segment_name(first_seq);
}

Status Spool::open(const SpoolOptions& opts, std::unique_ptr<Spool>& out) {
  if (opts.dir.empty())
    return Status::error("spool: options.dir is empty; set the spool directory");
  if (opts.segment_bytes == 0) {
    return Status::error("spool: segment_bytes must be > 0 (default 16 MiB)");
  }
  if (opts.max_bytes < opts.segment_bytes) {
    return Status::error("spool: max_bytes (" + std::to_string(opts.max_bytes) +
                         ") must be >= segment_bytes (" + std::to_string(opts.segment_bytes) +
                         "): the size limit works by deleting whole segments");
  }
  std::error_code ec;
  std::filesystem::create_directories(opts.dir, ec);
  if (ec) {
    return Status::error("spool: cannot create directory " + opts.dir.string() + ": " +
                         ec.message());
  }

  std::unique_ptr<Spool> spool(new Spool(opts));
  spool->dir_fd_ = ::open(opts.dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (spool->dir_fd_ < 0) return io_error("cannot open directory", opts.dir, errno);
  // Two writers would interleave records and delete each other's segments.
  if (::flock(spool->dir_fd_, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) {
      return Status::error("spool: directory " + opts.dir.string() +
                           " is locked by another process; is a second agent running with the "
                           "same spool directory?");
    }
    return io_error("cannot lock directory", opts.dir, errno);
  }
  if (Status s = spool->recover(); !s) return s;
  spool->keep_reserve();
  out = std::move(spool);
  return Status::ok();
}

Status Spool::recover() {
  std::error_code ec;
  std::filesystem::directory_iterator it(opts_.dir, ec), end;
  if (ec) return Status::error("spool: cannot list " + opts_.dir.string() + ": " + ec.message());
  for (; it != end; it.increment(ec)) {
    if (ec) return Status::error("spool: cannot list " + opts_.dir.string() + ": " + ec.message());
    const std::string name = it->path().filename().string();
    std::uint64_t first = 0;
    std::error_code type_ec;
    const bool regular = it->is_regular_file(type_ec);
    if ((name == kCursorName || name == kReserveName) && regular) continue;
    if (name == kSpareName && regular) {
      has_spare_ = true;
      std::error_code size_ec;
      stats_.spare_bytes = it->file_size(size_ec);
      continue;
    }
    if (name == kCursorTmpName && regular) {
      // An interrupted persist_cursor(): the rename never happened, so `acked` is the truth.
      ::unlinkat(dir_fd_, kCursorTmpName, 0);
      continue;
    }
    if (regular && parse_segment_name(name, first)) {
      segments_[first] = Segment{first, 0, 0};
      continue;
    }
    ++stats_.foreign_files_ignored;
  }

  if (Status s = load_cursor(); !s) return s;
  if (stream_id_ == 0) {
    // A new spool (or one whose cursor was lost) is a new stream of sequence numbers for the
    // collector. The id is made durable before any batch can be sent under it.
    std::random_device rd;
    while (stream_id_ == 0) stream_id_ = (std::uint64_t{rd()} << 32) | rd();
    if (Status s = persist_cursor(); !s) return s;
  }
  std::uint64_t max_seen = stats_.last_seq;  // from the cursor
  const std::uint64_t scanned_last = segments_.empty() ? 0 : segments_.rbegin()->first;

  for (auto seg_it = segments_.begin(); seg_it != segments_.end(); ++seg_it) {
    auto next = std::next(seg_it);
    const bool is_last = next == segments_.end();
    const std::uint64_t next_first =
        is_last ? std::numeric_limits<std::uint64_t>::max() : next->first;
    if (Status s = scan_segment(seg_it->second, is_last, next_first); !s) return s;
    if (seg_it->second.last_seq > max_seen) max_seen = seg_it->second.last_seq;
  }
  stats_.last_seq = max_seen;

  // A segment with nothing pending (all acked, or no valid record at all) is only clutter.
  for (auto seg_it = segments_.begin(); seg_it != segments_.end();) {
    const Segment& seg = seg_it->second;
    auto p = pending_.lower_bound(seg.first_seq);
    const bool has_pending = p != pending_.end() && seg.last_seq != 0 && p->first <= seg.last_seq;
    if (has_pending) {
      stats_.bytes += seg.bytes;
      ++seg_it;
      continue;
    }
    const std::string name = segment_name(seg.first_seq);
    if (!keep_as_spare(name) && ::unlinkat(dir_fd_, name.c_str(), 0) != 0 && errno != ENOENT) {
      return io_error("cannot delete fully acked segment", segment_path(seg.first_seq), errno);
    }
    seg_it = segments_.erase(seg_it);
  }
  stats_.segments = segments_.size();
  stats_.batches_pending = pending_.size();

  if (!segments_.empty() && segments_.rbegin()->first == scanned_last) {
    // Appends continue in the newest segment; its corrupt tail, if any, is already cut off.
    // An older segment never becomes active again: it may end in skipped garbage.
    const Segment& last = segments_.rbegin()->second;
    const auto path = segment_path(last.first_seq);
    active_fd_ = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (active_fd_ < 0) return io_error("cannot open segment", path, errno);
    active_reused_ = last.ends_in_marker;
  }
  return Status::ok();
}

Status Spool::scan_segment(Segment& seg, bool is_last, std::uint64_t next_first_seq) {
  const auto path = segment_path(seg.first_seq);
  const int fd = ::open(path.c_str(), (is_last ? O_RDWR : O_RDONLY) | O_CLOEXEC);
  if (fd < 0) return io_error("cannot open segment", path, errno);
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return io_error("cannot stat segment", path, err);
  }
  const std::uint64_t size = static_cast<std::uint64_t>(st.st_size);
  std::uint64_t off = 0;
  std::uint64_t prev_seq = 0;
  Status result;

  while (off < size) {
    std::array<std::byte, kHeaderBytes> header{};
    bool can_skip = false;  // true once the length is known to lie within the file
    bool good = false;
    std::uint32_t len = 0;
    std::uint64_t seq = 0;
    if (size - off >= kHeaderBytes) {
      iovec iov{header.data(), header.size()};
      const ssize_t n = preadv_all(fd, &iov, 1, off);
      if (n < 0) {
        result = io_error("cannot read segment", path, errno);
        break;
      }
      if (static_cast<std::size_t>(n) == kHeaderBytes && is_end_marker(header.data())) {
        // A reused file: what follows is from its earlier life. Appends go where it stands.
        seg.bytes = off;
        seg.ends_in_marker = true;
        ::close(fd);
        return Status::ok();
      }
      len = get_le32(header.data() + 4);
      seq = get_le64(header.data() + 8);
      if (static_cast<std::size_t>(n) == kHeaderBytes && len <= kMaxPayloadBytes &&
          len <= size - off - kHeaderBytes) {
        can_skip = true;
        scratch_.resize(len);
        iovec piov{scratch_.data(), len};
        const ssize_t m = preadv_all(fd, &piov, 1, off + kHeaderBytes);
        if (m < 0) {
          result = io_error("cannot read segment", path, errno);
          break;
        }
        // Sequence bounds catch a record that checksums but sits in the wrong file (a
        // misnamed or copied segment) and keep the index strictly ordered.
        good = static_cast<std::size_t>(m) == len &&
               get_le32(header.data()) == record_crc(header.data(), {scratch_.data(), len}) &&
               seq != 0 && seq >= seg.first_seq && seq > prev_seq && seq < next_first_seq;
      }
    }
    if (good) {
      if (seq > stats_.acked_seq) pending_[seq] = Location{seg.first_seq, off, len};
      seg.last_seq = seq;
      prev_seq = seq;
      off += kHeaderBytes + len;
      continue;
    }

    ++stats_.corrupt_records_recovered;
    if (is_last) {
      // A torn tail is the normal result of a crash mid-append: cut it so new records follow
      // the last good one instead of garbage that would hide them at the next recovery.
      if (::ftruncate(fd, static_cast<off_t>(off)) != 0) {
        result = io_error("cannot truncate corrupt tail of segment", path, errno);
        break;
      }
      if (const int err = fdatasync_retry(fd); err != 0) {
        result = io_error("cannot sync truncated segment", path, err);
        break;
      }
      seg.bytes = off;
      ::close(fd);
      return Status::ok();
    }
    // In a sealed segment a bad record means the disk changed under us. Keep what is still
    // readable: skip the record if its length is plausible, otherwise give up on the rest.
    if (!can_skip) break;
    off += kHeaderBytes + len;
  }
  seg.bytes = size;
  ::close(fd);
  return result;
}

Status Spool::load_cursor() {
  const auto path = opts_.dir / kCursorName;
  const int fd = ::openat(dir_fd_, kCursorName, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Status::ok();  // fresh spool: recover() draws a stream id
    return io_error("cannot open ack cursor", path, errno);
  }
  std::array<std::byte, kCursorBytes + 1> buf{};
  iovec iov{buf.data(), buf.size()};
  const ssize_t n = preadv_all(fd, &iov, 1, 0);
  const int err = errno;
  ::close(fd);
  if (n < 0) return io_error("cannot read ack cursor", path, err);
  // The cursor is replaced by rename, so a bad one means media damage. Starting from 0 only
  // re-sends batches the collector already has (it dedupes by sequence); refusing to start
  // would lose new data instead.
  if (static_cast<std::size_t>(n) != kCursorBytes ||
      get_le32(buf.data()) != crc32c({buf.data() + 4, kCursorBytes - 4}) ||
      get_le32(buf.data() + 4) != kCursorVersion) {
    ++stats_.corrupt_records_recovered;
    return Status::ok();
  }
  stats_.acked_seq = get_le64(buf.data() + 8);
  stats_.last_seq = get_le64(buf.data() + 16);
  stream_id_ = get_le64(buf.data() + 24);
  if (stats_.last_seq < stats_.acked_seq) stats_.last_seq = stats_.acked_seq;
  return Status::ok();
}

void Spool::keep_reserve() {
  if (has_reserve_) return;
  const int fd = ::openat(dir_fd_, kReserveName, O_WRONLY | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) return;
  has_reserve_ = ::posix_fallocate(fd, 0, kReserveBytes) == 0;
  ::close(fd);
  if (!has_reserve_) ::unlinkat(dir_fd_, kReserveName, 0);  // no room yet: tried again later
}

Status Spool::persist_cursor() {
  Status s = write_cursor();
  if (!s && (cursor_errno_ == ENOSPC || cursor_errno_ == EDQUOT) && drop_spare())
    s = write_cursor();
  if (!s && (cursor_errno_ == ENOSPC || cursor_errno_ == EDQUOT) && has_reserve_) {
    // The disk is full: give the ballast back and write the cursor in its place.
    ::unlinkat(dir_fd_, kReserveName, 0);
    has_reserve_ = false;
    ++stats_.reserve_used;
    s = write_cursor();
  }
  return s;
}

Status Spool::write_cursor() {
  cursor_errno_ = 0;
  std::array<std::byte, kCursorBytes> buf{};
  put_le32(buf.data() + 4, kCursorVersion);
  put_le64(buf.data() + 8, stats_.acked_seq);
  put_le64(buf.data() + 16, stats_.last_seq);
  put_le64(buf.data() + 24, stream_id_);
  put_le32(buf.data(), crc32c({buf.data() + 4, kCursorBytes - 4}));

  const auto tmp_path = opts_.dir / kCursorTmpName;
  const int fd = ::openat(dir_fd_, kCursorTmpName, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
  if (fd < 0) return io_error("cannot create", tmp_path, cursor_errno_ = errno);
  iovec iov{buf.data(), buf.size()};
  int err = pwritev_all(fd, &iov, 1, 0);
  if (err == 0) err = fdatasync_retry(fd);
  ::close(fd);
  if (err != 0) {
    ::unlinkat(dir_fd_, kCursorTmpName, 0);
    return io_error("cannot write", tmp_path, cursor_errno_ = err);
  }
  if (::renameat(dir_fd_, kCursorTmpName, dir_fd_, kCursorName) != 0) {
    cursor_errno_ = errno;
    return io_error("cannot rename ack cursor into place at", opts_.dir / kCursorName,
                    cursor_errno_);
  }
  // The rename must be durable before any segment it makes deletable is unlinked.
  if (Status s = sync_dir(); !s) return s;
  cursor_dirty_ = false;
  return Status::ok();
}

Status Spool::sync_dir() {
  if (::fsync(dir_fd_) != 0) return io_error("cannot fsync directory", opts_.dir, errno);
  dir_dirty_ = false;
  return Status::ok();
}

Status Spool::start_segment(std::uint64_t first_seq) {
  const auto path = segment_path(first_seq);
  const std::string name = segment_name(first_seq);
  active_reused_ = false;
  if (has_spare_) {
    has_spare_ = false;
    const std::uint64_t spare_bytes = std::exchange(stats_.spare_bytes, 0);
    if (::renameat2(dir_fd_, kSpareName, dir_fd_, name.c_str(), RENAME_NOREPLACE) == 0) {
      active_fd_ = ::openat(dir_fd_, name.c_str(), O_RDWR | O_CLOEXEC);
      if (active_fd_ < 0) return io_error("cannot open reused segment", path, errno);
      // Its old records have lower sequences than any new one, and sit behind end markers.
      active_reused_ = spare_bytes != 0;
      ++stats_.segments_reused;
    }
  }
  if (active_fd_ < 0) {
    active_fd_ = ::openat(dir_fd_, name.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (active_fd_ < 0) return io_error("cannot create segment", path, errno);
  }
  segments_[first_seq] = Segment{first_seq, 0, 0, false};
  ++stats_.segments;
  // The directory entry is synced with the data: on roll, on sync(), or per append.
  dir_dirty_ = true;
  return Status::ok();
}

Status Spool::seal_active() {
  if (active_fd_ < 0) return Status::ok();
  const auto path = segment_path(segments_.rbegin()->first);
  if (active_dirty_) {
    if (const int err = fdatasync_retry(active_fd_); err != 0) {
      return io_error("cannot sync segment", path, err);
    }
    active_dirty_ = false;
  }
  if (dir_dirty_) {
    if (Status s = sync_dir(); !s) return s;
  }
  ::close(active_fd_);
  active_fd_ = -1;
  return Status::ok();
}

Status Spool::append(std::uint64_t seq, std::span<const std::byte> payload) {
  // The copy kept for the forwarder goes into the buffer of a batch already sent.
  std::vector<std::byte> copy = spare_buffer();
  copy.assign(payload.begin(), payload.end());
  return append(seq, std::move(copy));
}

// Batches this process appended wait in memory for the forwarder, up to kRecentBytes (the
// oldest go first: they are on disk too).
void Spool::keep_recent(std::uint64_t seq, std::vector<std::byte>&& payload) {
  if (payload.size() > kRecentBytes) {
    recycle(std::move(payload));
    return;
  }
  while (recent_bytes_ + payload.size() > kRecentBytes) {
    recent_bytes_ -= recent_.begin()->second.size();
    recycle(std::move(recent_.begin()->second));
    recent_.erase(recent_.begin());
  }
  recent_bytes_ += payload.size();
  recent_.emplace(seq, std::move(payload));
}

void Spool::recycle(std::vector<std::byte>&& buffer) {
  // Up to half the in-memory budget again: as many as a burst of batches waiting for the
  // forwarder needs. A fresh buffer costs a page fault per 4 KiB on first touch.
  if (buffer.capacity() == 0 || spare_bytes_ + buffer.capacity() > kRecentBytes / 2) return;
  spare_bytes_ += buffer.capacity();
  spares_.push_back(std::move(buffer));
}

std::vector<std::byte> Spool::spare_buffer() {
  if (spares_.empty()) return {};
  std::vector<std::byte> b = std::move(spares_.back());
  spares_.pop_back();
  spare_bytes_ -= b.capacity();
  return b;
}

Status Spool::append(std::uint64_t seq, std::vector<std::byte>&& payload) {
  if (seq <= stats_.last_seq) {
    return Status::error("spool: append of sequence " + std::to_string(seq) +
                         " is not above the last appended " + std::to_string(stats_.last_seq) +
                         "; sequences must strictly increase (resume from last_seq() + 1)");
  }
  if (payload.size() > kMaxPayloadBytes) {
    return Status::error("spool: batch " + std::to_string(seq) + " is " +
                         std::to_string(payload.size()) + " bytes, over the " +
                         std::to_string(kMaxPayloadBytes) + "-byte limit; split it");
  }
  if (active_fd_ >= 0 && segments_.rbegin()->second.bytes >= opts_.segment_bytes) {
    if (Status s = seal_active(); !s) return s;
  }
  if (active_fd_ < 0) {
    if (Status s = start_segment(seq); !s) return s;
  }

  Segment& seg = segments_.rbegin()->second;
  const auto len = static_cast<std::uint32_t>(payload.size());
  std::array<std::byte, kHeaderBytes> header{};
  put_le32(header.data() + 4, len);
  put_le64(header.data() + 8, seq);
  put_le32(header.data(), record_crc(header.data(), payload));
  auto marker = the_end_marker();  // a copy: iovec wants a non-const pointer
  std::array<iovec, 3> iov{iovec{header.data(), header.size()},
                           iovec{const_cast<std::byte*>(payload.data()), payload.size()},
                           iovec{marker.data(), marker.size()}};
  const int iovcnt = active_reused_ ? 3 : 2;
  int err = pwritev_all(active_fd_, iov.data(), iovcnt, seg.bytes);
  if ((err == ENOSPC || err == EDQUOT) && drop_spare()) {
    iov = {iovec{header.data(), header.size()},
           iovec{const_cast<std::byte*>(payload.data()), payload.size()},
           iovec{marker.data(), marker.size()}};  // pwritev_all advanced them
    err = pwritev_all(active_fd_, iov.data(), iovcnt, seg.bytes);
  }
  if (err != 0) {
    // Cut the partial record so the segment stays clean (and a reused file's older bytes
    // with it); if even that fails, seal it and let recovery count the tail, since writing
    // after garbage would hide the new records.
    if (::ftruncate(active_fd_, static_cast<off_t>(seg.bytes)) != 0) {
      ::close(active_fd_);
      active_fd_ = -1;
    } else {
      active_reused_ = false;
    }
    return io_error("cannot append batch " + std::to_string(seq) + " to",
                    segment_path(seg.first_seq), err);
  }
  pending_[seq] = Location{seg.first_seq, seg.bytes, len};
  keep_recent(seq, std::move(payload));
  seg.bytes += kHeaderBytes + len;
  seg.last_seq = seq;
  active_dirty_ = true;
  stats_.bytes += kHeaderBytes + len;
  stats_.last_seq = seq;
  ++stats_.batches_appended;
  stats_.batches_pending = pending_.size();

  if (opts_.sync_every_append) {
    if (Status s = sync(); !s) return s;
  }
  return enforce_max_bytes();
}

Status Spool::enforce_max_bytes() {
  // Never the newest segment: it holds the batch just appended.
  while (stats_.bytes > opts_.max_bytes && segments_.size() > 1) {
    if (Status s = delete_segment(segments_.begin()->first, true); !s) return s;
  }
  return Status::ok();
}

Status Spool::delete_segment(std::uint64_t first_seq, bool count_as_dropped) {
  auto seg_it = segments_.find(first_seq);
  const Segment seg = seg_it->second;
  auto begin = pending_.lower_bound(seg.first_seq);
  auto end = pending_.upper_bound(seg.last_seq);
  if (seg.last_seq == 0) end = begin;  // no valid records
  if (count_as_dropped) {
    for (auto p = begin; p != end; ++p) {
      ++stats_.batches_dropped_full;
      stats_.bytes_dropped_full += kHeaderBytes + p->second.length;
    }
  }
  pending_.erase(begin, end);
  stats_.batches_pending = pending_.size();

  const bool is_active = active_fd_ >= 0 && std::next(seg_it) == segments_.end();
  if (is_active) {
    ::close(active_fd_);
    active_fd_ = -1;
    active_dirty_ = false;
  }
  if (read_fd_ >= 0 && read_fd_segment_ == first_seq) {
    ::close(read_fd_);
    read_fd_ = -1;
  }
  segments_.erase(seg_it);
  stats_.bytes -= seg.bytes;
  stats_.segments = segments_.size();
  const std::string name = segment_name(first_seq);
  // An acked segment's file is kept for the next segment; one dropped for max_bytes is not
  // (the spool is over its size already).
  if (!count_as_dropped && !is_active && keep_as_spare(name)) return Status::ok();
  if (::unlinkat(dir_fd_, name.c_str(), 0) != 0 && errno != ENOENT) {
    // Forgotten in memory either way; a leftover file is re-examined at the next open().
    return io_error("cannot delete segment", segment_path(first_seq), errno);
  }
  return Status::ok();
}

// The rename need not be durable: if a crash undoes it, recovery finds the segment wholly
// acked and keeps it as the spare again (or deletes it).
bool Spool::keep_as_spare(const std::string& name) {
  if (has_spare_) return false;
  if (::renameat2(dir_fd_, name.c_str(), dir_fd_, kSpareName, RENAME_NOREPLACE) != 0) return false;
  struct stat st {};
  has_spare_ = true;
  stats_.spare_bytes =
      ::fstatat(dir_fd_, kSpareName, &st, 0) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
  return true;
}

bool Spool::drop_spare() {
  if (!has_spare_) return false;
  has_spare_ = false;
  stats_.spare_bytes = 0;
  return ::unlinkat(dir_fd_, kSpareName, 0) == 0;
}

Status Spool::ack(std::uint64_t seq) {
  if (seq <= stats_.acked_seq) return Status::ok();  // duplicate or reordered ack
  if (seq > stats_.last_seq) {
    return Status::error("spool: collector acked sequence " + std::to_string(seq) +
                         " but the last appended is " + std::to_string(stats_.last_seq) +
                         "; agent id or spool directory mismatch?");
  }
  // Sealed segments wholly acked are deleted; the active one stays and takes the next
  // appends (deleting it made every acked batch cost a file create, a directory sync, an
  // unlink and a cursor sync). Until a segment goes, the cursor need not be durable: a stale
  // one only re-sends batches the collector already has, and the newest sequence is in the
  // active segment, synced before anything in it was sent.
  const auto deletable = [&] {
    if (segments_.empty() || segments_.begin()->second.last_seq > seq) return false;
    const bool is_active = active_fd_ >= 0 && segments_.size() == 1;
    return !is_active;
  };
  const std::uint64_t previous = stats_.acked_seq;
  stats_.acked_seq = seq;
  if (deletable()) {
    // The cursor's rename is durable before any segment it makes deletable is unlinked.
    if (Status s = persist_cursor(); !s) {
      stats_.acked_seq = previous;  // the next ack retries; nothing was deleted
      return s;
    }
  } else {
    cursor_dirty_ = true;
  }
  pending_.erase(pending_.begin(), pending_.upper_bound(seq));
  stats_.batches_pending = pending_.size();

  Status first_error;
  bool deleted = false;
  while (deletable()) {
    if (Status s = delete_segment(segments_.begin()->first, false); !s && first_error.is_ok()) {
      first_error = s;
    }
    deleted = true;
  }
  if (deleted) keep_reserve();  // space came back: the ballast too
  return first_error;
}

Status Spool::checkpoint() {
  if (!cursor_dirty_) return Status::ok();
  return persist_cursor();
}

Status Spool::sync() {
  if (active_fd_ >= 0 && active_dirty_) {
    if (const int err = fdatasync_retry(active_fd_); err != 0) {
      return io_error("cannot sync segment", segment_path(segments_.rbegin()->first), err);
    }
    active_dirty_ = false;
  }
  if (dir_dirty_) return sync_dir();
  return Status::ok();
}

int Spool::read_fd_for(std::uint64_t first_seq) {
  if (active_fd_ >= 0 && !segments_.empty() && segments_.rbegin()->first == first_seq) {
    return active_fd_;
  }
  if (read_fd_ >= 0 && read_fd_segment_ == first_seq) return read_fd_;
  if (read_fd_ >= 0) ::close(read_fd_);
  const std::string name = segment_name(first_seq);
  read_fd_ = ::openat(dir_fd_, name.c_str(), O_RDONLY | O_CLOEXEC);
  read_fd_segment_ = first_seq;
  return read_fd_;
}

bool Spool::read_next(std::uint64_t after_seq, std::vector<std::byte>& payload,
                      std::uint64_t& seq) {
  for (;;) {
    auto it = pending_.upper_bound(after_seq);
    if (it == pending_.end()) return false;
    // Anything older in memory was dropped (max_bytes) or read from disk: forget it.
    while (!recent_.empty() && recent_.begin()->first < it->first) {
      recent_bytes_ -= recent_.begin()->second.size();
      recycle(std::move(recent_.begin()->second));
      recent_.erase(recent_.begin());
    }
    if (!recent_.empty() && recent_.begin()->first == it->first) {
      recent_bytes_ -= recent_.begin()->second.size();
      payload.swap(recent_.begin()->second);
      recycle(std::move(recent_.begin()->second));  // the caller's previous buffer
      recent_.erase(recent_.begin());
      seq = it->first;
      return true;
    }
    const Location loc = it->second;
    const int fd = read_fd_for(loc.segment);
    if (fd < 0) {
      // Likely transient (EMFILE): keep the batch so the next call can retry it.
      ++stats_.read_errors;
      return false;
    }
    bool good = false;
    {
      std::array<std::byte, kHeaderBytes> header{};
      payload.resize(loc.length);
      std::array<iovec, 2> iov{iovec{header.data(), header.size()},
                               iovec{payload.data(), payload.size()}};
      const ssize_t n = preadv_all(fd, iov.data(), 2, loc.offset);
      good = n == static_cast<ssize_t>(kHeaderBytes + loc.length) &&
             get_le32(header.data() + 4) == loc.length &&
             get_le64(header.data() + 8) == it->first &&
             get_le32(header.data()) == record_crc(header.data(), payload);
    }
    if (good) {
      ++stats_.batches_read_from_disk;
      seq = it->first;
      return true;
    }
    // Sending a batch we cannot verify would poison the collector; forget it and move on.
    ++stats_.read_errors;
    pending_.erase(it);
    stats_.batches_pending = pending_.size();
  }
}

}  // namespace citywatch::agent
