// Spool: the agent's on-disk store-and-forward queue. Every encoded batch is appended here
// before it is sent to the collector, and is deleted only once the collector has acked it, so
// a collector outage loses nothing until `max_bytes` is reached; past that the oldest batches
// are dropped and counted.
//
// On-disk layout (modelled on LevelDB's log, without its 32 KiB blocking): a directory of
// append-only segment files named `NNNNNNNNNNNNNNNNNNNN.spool` (the first sequence number in
// the file, 20 digits, zero padded) plus a small `acked` file holding the ack cursor and the
// highest sequence ever appended, and a 16 KiB `reserve` file: on a full file system it is
// deleted to make room for the cursor, without which no acked segment could be deleted to
// free the disk (made again once there is room). Each record is a 16-byte little-endian header
// followed by the payload:
//   u32 crc32c   over everything after it (length, seq, payload)
//   u32 length   payload bytes
//   u64 seq      strictly increasing per agent, starting at 1
// The agent may die at any instant; open() keeps every record whose checksum verifies,
// truncates a torn or corrupt tail of the newest segment, skips corrupt records in older
// segments, and counts both in SpoolStats::corrupt_records_recovered. It never aborts on bad
// data; it fails only when the directory itself cannot be used.
//
// Segment files are reused, not churned: the first sealed segment emptied by an ack is renamed
// to `spare` (at most one), and the next segment to start is that file renamed: its blocks are
// already allocated, its pages often still cached, and nothing is unlinked. An append costs
// about a third less CPU than with a new file per segment (BM_SpoolAppend in
// bench/pipeline_bench.cc: 46-49 us -> 31-33 us per 85 KB batch). The file's old bytes past
// the new records are never read: every append to a reused file is followed by a 16-byte end
// marker (a header with length 0xffffffff and sequence 0, which no record has), where recovery
// stops without counting anything corrupt. Disk use is thus up to one segment more than the
// segments themselves (SpoolStats::spare_bytes); a full file system gets the spare's space
// first (before the reserve, below), and batches dropped for max_bytes are unlinked.
//
// Durability: with sync_every_append a batch is on disk when append() returns. Otherwise the
// owner calls sync() from a timer (the agent: once a second, and before sending: the
// forwarder's group commit, one sync for every batch appended since the last) and the spool
// also syncs a segment when it rolls to the next one; an unsynced tail may be lost on power
// loss, but it was never sent. The ack cursor is made durable before a segment is deleted and
// by checkpoint(); a stale cursor only re-sends batches the collector deduplicates.
//
// Ownership and thread-safety: NOT thread-safe. One owner, the agent's forwarder, calls every
// method from a single Asio strand. Blocking file I/O happens inside the calls.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <vector>

#include "common/status.h"

namespace citywatch::agent {

struct SpoolOptions {
  std::filesystem::path dir;
  // Soft cap on segment bytes on disk. The active segment is never dropped, so usage can
  // exceed this by up to one segment (segment_bytes plus one batch).
  std::uint64_t max_bytes = 1ull << 30;
  // A segment is sealed (synced, closed) and a new one started once it reaches this size.
  std::uint64_t segment_bytes = 16ull << 20;
  bool sync_every_append = false;

  bool operator==(const SpoolOptions&) const = default;
};

struct SpoolStats {
  std::uint64_t bytes = 0;     // segment bytes on disk
  std::uint64_t segments = 0;  // segment files on disk
  std::uint64_t batches_pending = 0;
  std::uint64_t batches_appended = 0;           // since open()
  std::uint64_t batches_dropped_full = 0;       // unacked batches deleted to respect max_bytes
  std::uint64_t bytes_dropped_full = 0;         // their on-disk bytes (header + payload)
  std::uint64_t corrupt_records_recovered = 0;  // torn or bad checksum at recovery
  std::uint64_t acked_seq = 0;
  std::uint64_t last_seq = 0;
  // Beyond the minimum the forwarder needs: evidence for "where did my data go?".
  std::uint64_t foreign_files_ignored = 0;  // unrecognised entries in the spool directory
  std::uint64_t read_errors = 0;  // records that failed their checksum or pread in read_next()
  // Batches read_next() read back from a segment file, not handed over from memory: after a
  // restart or reconnect, or when sending fell kRecentBytes behind.
  std::uint64_t batches_read_from_disk = 0;
  // Times the file system was too full to write the ack cursor and the spool's 16 KiB
  // reserve file was given up for it (re-made once acked segments freed space).
  std::uint64_t reserve_used = 0;
  // Segment files started by taking the spare (an emptied segment kept for reuse) instead of
  // creating a file, and the spare's size now (0 when there is none).
  std::uint64_t segments_reused = 0;
  std::uint64_t spare_bytes = 0;
};

class Spool {
 public:
  // A payload larger than this is refused: it cannot be a sane batch, and it bounds what a
  // corrupt length field can make recovery read.
  static constexpr std::uint32_t kMaxPayloadBytes = 64u << 20;
  static constexpr std::size_t kHeaderBytes = 16;
  static constexpr std::size_t kRecentBytes = std::size_t{8} << 20;

  // Creates `opts.dir` if needed and recovers its contents (see the file comment).
  static Status open(const SpoolOptions& opts, std::unique_ptr<Spool>& out);

  ~Spool();
  Spool(const Spool&) = delete;
  Spool& operator=(const Spool&) = delete;

  // Appends one batch. `seq` must be greater than last_seq(). If the spool then exceeds
  // max_bytes, whole oldest segments are deleted, acked or not (never the active one), and
  // their unacked batches are counted in batches_dropped_full / bytes_dropped_full.
  Status append(std::uint64_t seq, std::span<const std::byte> payload);
  // The same, keeping `payload` itself for the forwarder instead of a copy of it.
  Status append(std::uint64_t seq, std::vector<std::byte>&& payload);
  // A buffer of a batch the forwarder has taken, to build the next batch in and append by
  // move: its capacity is reused, so its pages are not faulted in again. Its contents mean
  // nothing. Empty when the spool holds none.
  std::vector<std::byte> spare_buffer();

  // Reads the first pending batch with sequence > after_seq into `payload` (resized) and its
  // sequence into `seq`. Returns false if there is none. A batch this process appended is
  // handed over from memory (the last kRecentBytes of them, until read once): no read back
  // from disk and no checksum pass for bytes that never left memory. A record that fails its
  // checksum here (the disk changed under us) is counted in read_errors, forgotten, and skipped; if
  // its segment cannot even be opened, read_errors counts it and false is returned with the batch
  // kept, so a later call retries.
  bool read_next(std::uint64_t after_seq, std::vector<std::byte>& payload, std::uint64_t& seq);

  // Cumulative ack: every batch <= seq is durable at the collector. Deletes every sealed
  // segment whose batches are all <= seq, persisting the cursor first; the active segment
  // stays (appends continue in it until it rolls), and when nothing is deleted the cursor is
  // only marked for checkpoint(). Stale acks (seq <= acked_seq()) are a no-op.
  Status ack(std::uint64_t seq);

  // Persists the ack cursor if an ack moved it since (the agent: once a second and at exit),
  // so a restart re-sends little of what the collector already has.
  Status checkpoint();

  // fdatasync of the active segment (and the directory, if a segment was created since).
  Status sync();

  // Highest sequence ever appended; survives restart even when everything was acked and
  // deleted, so the owner never reuses a sequence the collector has already seen.
  std::uint64_t last_seq() const { return stats_.last_seq; }
  std::uint64_t acked_seq() const { return stats_.acked_seq; }
  // Random, fixed for the life of this spool directory: the collector keys sequence numbers
  // by (agent, stream), so a recreated spool cannot collide with what it already holds.
  std::uint64_t stream_id() const { return stream_id_; }
  const SpoolStats& stats() const { return stats_; }
  // Bytes of batches appended by this process and held in memory, not yet read.
  std::size_t unread_bytes_in_memory() const { return recent_bytes_; }

 private:
  struct Segment {
    std::uint64_t first_seq = 0;  // from the file name
    std::uint64_t last_seq = 0;   // highest valid record; 0 if none
    std::uint64_t bytes = 0;      // end of the last record (the file may hold more: reused)
    bool ends_in_marker = false;  // recovery stopped at an end marker: older bytes follow
  };
  struct Location {
    std::uint64_t segment = 0;  // Segment::first_seq
    std::uint64_t offset = 0;   // of the record header
    std::uint32_t length = 0;   // payload bytes
  };

  explicit Spool(const SpoolOptions& opts);

  Status recover();
  Status scan_segment(Segment& seg, bool is_last, std::uint64_t next_first_seq);
  Status load_cursor();
  Status persist_cursor();  // write_cursor(), using the reserve if the disk is full
  Status write_cursor();
  void keep_reserve();  // best effort: makes the reserve file if it is missing
  Status start_segment(std::uint64_t first_seq);
  Status seal_active();
  Status delete_segment(std::uint64_t first_seq, bool count_as_dropped);
  bool keep_as_spare(const std::string& name);  // renames a segment to kSpareName if none
  bool drop_spare();                            // true if there was one to free the disk
  Status enforce_max_bytes();
  void keep_recent(std::uint64_t seq, std::vector<std::byte>&& payload);
  void recycle(std::vector<std::byte>&& buffer);
  int read_fd_for(std::uint64_t first_seq);
  std::filesystem::path segment_path(std::uint64_t first_seq) const;
  Status sync_dir();

  SpoolOptions opts_;
  SpoolStats stats_;
  std::uint64_t stream_id_ = 0;
  int dir_fd_ = -1;
  std::map<std::uint64_t, Segment> segments_;  // by first_seq; the last one may be active
  std::map<std::uint64_t, Location> pending_;  // unacked batches by seq
  int active_fd_ = -1;                         // last segment, open for append; -1 if none
  bool active_dirty_ = false;                  // written since the last fdatasync
  bool dir_dirty_ = false;                     // entries created since the last dir fsync
  bool has_reserve_ = false;
  bool has_spare_ = false;
  bool active_reused_ = false;  // the active segment's file holds older bytes past its end
  int cursor_errno_ = 0;        // of the last write_cursor() that failed
  bool cursor_dirty_ = false;   // acked_seq moved since the cursor was persisted
  int read_fd_ = -1;            // cached fd of a sealed segment for read_next
  std::uint64_t read_fd_segment_ = 0;
  std::vector<std::byte> scratch_;  // reused by recovery and reads: no per-record allocation
  // Batches appended since open() and not yet read, oldest evicted past kRecentBytes.
  std::map<std::uint64_t, std::vector<std::byte>> recent_;
  std::size_t recent_bytes_ = 0;
  // Buffers of batches read or evicted, for the next copies: a fresh buffer is fresh pages.
  std::vector<std::vector<std::byte>> spares_;
  std::size_t spare_bytes_ = 0;  // their capacity
};

}  // namespace citywatch::agent
