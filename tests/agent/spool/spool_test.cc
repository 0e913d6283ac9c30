#include "agent/spool/spool.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

namespace citywatch::agent {
namespace {

namespace fs = std::filesystem;

constexpr std::uint64_t kHeader = Spool::kHeaderBytes;

// Deterministic, seq-dependent content so a record read back from the wrong place shows.
std::vector<std::byte> make_payload(std::uint64_t seq, std::size_t size) {
  std::vector<std::byte> p(size);
  for (std::size_t i = 0; i < size; ++i) p[i] = static_cast<std::byte>((seq * 131 + i * 7) & 0xFF);
  return p;
}

std::vector<char> read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<char>(std::istreambuf_iterator<char>(in), {});
}

void write_file(const fs::path& path, const std::vector<char>& data, std::size_t size) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(data.data(), static_cast<std::streamsize>(size));
}

class SpoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::path(::testing::TempDir()) / "spool_test_XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
    dir_ = root_ / "spool";
  }
  void TearDown() override {
    spool_.reset();
    if (mounted_) (void)std::system(("umount " + dir_.string()).c_str());
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  // The spool's directory on a real 256 KiB tmpfs, unmounted at TearDown (spool closed first).
  void mount_small_tmpfs() {
    ASSERT_EQ(::geteuid(), 0u) << "mounting the test's tmpfs needs root (CI runs as root)";
    fs::create_directories(dir_);
    ASSERT_EQ(std::system(
                  ("mount -t tmpfs -o size=256k,mode=0700 cw-spool-test " + dir_.string()).c_str()),
              0);
    mounted_ = true;
  }

  // Fills that tmpfs to its last block with a `filler` file; a `probe` file proves it full.
  void fill_file_system() {
    {
      std::ofstream filler(dir_ / "filler", std::ios::binary);
      const std::vector<char> block(512, 'x');
      for (int i = 0; i < 1024 && filler.write(block.data(), block.size()); ++i) filler.flush();
    }
    std::ofstream(dir_ / "probe") << "x";  // the file system is full: not even one block
    ASSERT_FALSE(fs::exists(dir_ / "probe") && fs::file_size(dir_ / "probe") == 1);
  }

  SpoolOptions options(std::uint64_t segment_bytes = 1 << 20, std::uint64_t max_bytes = 1 << 30) {
    SpoolOptions o;
    o.dir = dir_;
    o.segment_bytes = segment_bytes;
    o.max_bytes = max_bytes;
    return o;
  }

  void open_spool(const SpoolOptions& o) {
    spool_.reset();
    Status s = Spool::open(o, spool_);
    ASSERT_TRUE(s) << s.message();
  }

  void append(std::uint64_t seq, std::size_t size) {
    Status s = spool_->append(seq, make_payload(seq, size));
    ASSERT_TRUE(s) << s.message();
  }

  // Every pending batch, in read order, verified against make_payload().
  std::vector<std::uint64_t> read_all() {
    std::vector<std::uint64_t> seqs;
    std::vector<std::byte> payload;
    std::uint64_t after = 0, seq = 0;
    while (spool_->read_next(after, payload, seq)) {
      EXPECT_EQ(payload, make_payload(seq, payload.size())) << "seq " << seq;
      seqs.push_back(seq);
      after = seq;
    }
    return seqs;
  }

  std::vector<fs::path> segment_files() const {
    std::vector<fs::path> out;
    for (const auto& e : fs::directory_iterator(dir_)) {
      if (e.path().extension() == ".spool") out.push_back(e.path());
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  static fs::path segment_name(std::uint64_t first) {
    std::string digits = std::to_string(first);
    return std::string(20 - digits.size(), '0') + digits + ".spool";
  }

  fs::path root_;
  fs::path dir_;
  std::unique_ptr<Spool> spool_;
  bool mounted_ = false;
};

TEST_F(SpoolTest, RoundTrip) {
  open_spool(options());
  for (std::uint64_t seq = 1; seq <= 100; ++seq) append(seq, (seq * 37) % 3000);  // incl. empty
  std::vector<std::uint64_t> expected(100);
  for (std::uint64_t i = 0; i < 100; ++i) expected[i] = i + 1;
  EXPECT_EQ(read_all(), expected);
  const SpoolStats& st = spool_->stats();
  EXPECT_EQ(st.batches_appended, 100u);
  EXPECT_EQ(st.batches_pending, 100u);
  EXPECT_EQ(st.last_seq, 100u);
  EXPECT_EQ(st.segments, 1u);
  EXPECT_EQ(st.bytes, fs::file_size(dir_ / segment_name(1)));
}

TEST_F(SpoolTest, RestartRecoversEverythingAndContinues) {
  open_spool(options(/*segment_bytes=*/4096));
  for (std::uint64_t seq = 1; seq <= 50; ++seq) append(seq, 500);
  ASSERT_TRUE(spool_->ack(10));
  const std::uint64_t segments = spool_->stats().segments;
  const std::uint64_t bytes = spool_->stats().bytes;
  ASSERT_GT(segments, 1u);

  open_spool(options(4096));
  const SpoolStats& st = spool_->stats();
  EXPECT_EQ(st.corrupt_records_recovered, 0u);
  EXPECT_EQ(st.last_seq, 50u);
  EXPECT_EQ(st.acked_seq, 10u);
  EXPECT_EQ(st.batches_pending, 40u);
  EXPECT_EQ(st.segments, segments);
  EXPECT_EQ(st.bytes, bytes);
  std::vector<std::uint64_t> got = read_all();
  ASSERT_EQ(got.size(), 40u);
  EXPECT_EQ(got.front(), 11u);
  EXPECT_EQ(got.back(), 50u);

  append(51, 500);
  open_spool(options(4096));
  EXPECT_EQ(read_all().back(), 51u);
  EXPECT_EQ(spool_->stats().corrupt_records_recovered, 0u);
}

TEST_F(SpoolTest, TornTailAtEveryByteOffset) {
  open_spool(options());
  append(1, 40);
  append(2, 40);
  append(3, 40);
  spool_.reset();
  const fs::path seg = dir_ / segment_name(1);
  const std::vector<char> full = read_file(seg);
  const std::size_t last_start = 2 * (kHeader + 40);
  ASSERT_EQ(full.size(), last_start + kHeader + 40);

  for (std::size_t cut = last_start; cut < full.size(); ++cut) {
    SCOPED_TRACE("cut at " + std::to_string(cut));
    write_file(seg, full, cut);
    open_spool(options());
    EXPECT_EQ(read_all(), (std::vector<std::uint64_t>{1, 2}));
    EXPECT_EQ(spool_->stats().corrupt_records_recovered, cut == last_start ? 0u : 1u);
    EXPECT_EQ(spool_->last_seq(), 2u);
    EXPECT_EQ(fs::file_size(seg), last_start);  // the torn tail is gone
    // Re-appending the lost batch lands after the last good record and survives a restart.
    append(3, 40);
    open_spool(options());
    EXPECT_EQ(read_all(), (std::vector<std::uint64_t>{1, 2, 3}));
    EXPECT_EQ(spool_->stats().corrupt_records_recovered, 0u);
    spool_.reset();
  }
}

TEST_F(SpoolTest, TornFirstRecordLeavesEmptySpool) {
  open_spool(options());
  append(1, 40);
  spool_.reset();
  const fs::path seg = dir_ / segment_name(1);
  fs::resize_file(seg, 5);
  open_spool(options());
  EXPECT_TRUE(read_all().empty());
  EXPECT_EQ(spool_->stats().corrupt_records_recovered, 1u);
  EXPECT_EQ(spool_->stats().segments, 0u);
  EXPECT_FALSE(fs::exists(seg));  // nothing valid left in it
  append(1, 40);
  EXPECT_EQ(read_all(), (std::vector<std::uint64_t>{1}));
}

TEST_F(SpoolTest, BitFlipInPayloadOfLastSegmentTruncatesFromThere) {
  open_spool(options());
  for (std::uint64_t seq = 1; seq <= 3; ++seq) append(seq, 100);
  spool_.reset();
  const fs::path seg = dir_ / segment_name(1);
  std::vector<char> data = read_file(seg);
  data[(kHeader + 100) + kHeader + 50] ^= 0x10;  // inside record 2's payload
  write_file(seg, data, data.size());
  open_spool(options());
  EXPECT_EQ(read_all(), (std::vector<std::uint64_t>{1}));
  EXPECT_EQ(spool_->stats().corrupt_records_recovered, 1u);
}

TEST_F(SpoolTest, BitFlipInSealedSegmentSkipsOnlyThatRecord) {
  // 2 records of 116 bytes per 200-byte segment: segments start at 1, 3, 5.
  open_spool(options(200));
  for (std::uint64_t seq = 1; seq <= 6; ++seq) append(seq, 100);
  ASSERT_EQ(segment_files().size(), 3u);
  spool_.reset();
  const fs::path seg = dir_ / segment_name(3);
  std::vector<char> data = read_file(seg);
  data[kHeader + 7] ^= 0x01;  // record 3's payload
  write_file(seg, data, data.size());
  open_spool(options(200));
  EXPECT_EQ(read_all(), (std::vector<std::uint64_t>{1, 2, 4, 5, 6}));
  EXPECT_EQ(spool_->stats().corrupt_records_recovered, 1u);
}

TEST_F(SpoolTest, CorruptionAfterOpenIsCaughtByReadNext) {
  open_spool(options());
  for (std::uint64_t seq = 1; seq <= 3; ++seq) append(seq, 100);
  // The first read hands over the copies kept in memory since append(); a second read (the
  // forwarder after a reconnect) reads the disk, where the bit flip is caught.
  EXPECT_EQ(read_all(), (std::vector<std::uint64_t>{1, 2, 3}));
  const fs::path seg = dir_ / segment_name(1);
  std::vector<char> data = read_file(seg);
  data[kHeader + 99] ^= 0x40;  // record 1's last payload byte
  write_file(seg, data, data.size());
  EXPECT_EQ(read_all(), (std::vector<std::uint64_t>{2, 3}));
  EXPECT_EQ(spool_->stats().read_errors, 1u);
  EXPECT_EQ(spool_->stats().batches_pending, 2u);
}

TEST_F(SpoolTest, RecentBatchesComeFromMemoryOnceThenFromDisk) {
  open_spool(options(/*segment_bytes=*/64 << 20));  // one segment
  // 3 x 3 MiB: the first is evicted from memory (8 MiB kept) and must come from disk.
  const std::size_t big = std::size_t{3} << 20;
  for (std::uint64_t seq = 1; seq <= 3; ++seq) append(seq, big);
  const fs::path seg = dir_ / segment_name(1);
  // Corrupt batch 3 on disk only: the in-memory copy is what the first read sends.
  std::vector<char> data = read_file(seg);
  data[2 * (kHeader + big) + kHeader + 5] ^= 0x01;
  write_file(seg, data, data.size());
  EXPECT_EQ(read_all(), (std::vector<std::uint64_t>{1, 2, 3}));  // 1 from disk, 2 and 3 memory
  EXPECT_EQ(spool_->stats().read_errors, 0u);
  // Read again (after a reconnect): everything from disk now, batch 3 fails its checksum.
  EXPECT_EQ(read_all(), (std::vector<std::uint64_t>{1, 2}));
  EXPECT_EQ(spool_->stats().read_errors, 1u);
}

TEST_F(SpoolTest, BuffersHandedInAndRecycledKeepEveryBatchIntact) {
  // Batches handed over as buffers (the agent's encoder) and as copies (into buffers recycled
  // from batches already read) come back byte for byte, each read once from memory; those
  // pushed out of memory (8 MiB kept) come back from disk, counted.
  open_spool(options(/*segment_bytes=*/64 << 20));
  std::uint64_t seq = 0;
  std::size_t read = 0;
  std::vector<std::byte> payload;
  std::uint64_t got = 0;
  for (int round = 0; round < 40; ++round) {
    // Sizes vary so recycled buffers are both larger and smaller than the next batch.
    const std::size_t size = 1000 + static_cast<std::size_t>(round % 7) * 9000;
    ++seq;
    if (round % 2 == 0) {
      const std::vector<std::byte> copied = make_payload(seq, size);
      ASSERT_TRUE(spool_->append(seq, std::span<const std::byte>(copied)));
    } else {
      std::vector<std::byte> own = make_payload(seq, size);
      ASSERT_TRUE(spool_->append(seq, std::move(own)));
    }
    if (round % 3 != 2) continue;  // read behind the appends, in bursts
    while (spool_->read_next(read, payload, got)) {
      ASSERT_EQ(payload, make_payload(got, payload.size())) << "seq " << got;
      read = got;
    }
  }
  while (spool_->read_next(read, payload, got)) {
    ASSERT_EQ(payload, make_payload(got, payload.size())) << "seq " << got;
    read = got;
  }
  EXPECT_EQ(read, seq);
  EXPECT_EQ(spool_->stats().batches_read_from_disk, 0u);
  EXPECT_EQ(spool_->unread_bytes_in_memory(), 0u);

  // 5 x 3 MiB appended as buffers with nothing read: the first three are pushed out of memory.
  const std::size_t big = std::size_t{3} << 20;
  for (int i = 0; i < 5; ++i) {
    ++seq;
    std::vector<std::byte> own = make_payload(seq, big);
    ASSERT_TRUE(spool_->append(seq, std::move(own)));
  }
  EXPECT_EQ(spool_->unread_bytes_in_memory(), 2 * big);
  while (spool_->read_next(read, payload, got)) {
    ASSERT_EQ(payload, make_payload(got, payload.size())) << "seq " << got;
    read = got;
  }
  EXPECT_EQ(read, seq);
  EXPECT_EQ(spool_->stats().batches_read_from_disk, 3u);
  EXPECT_EQ(spool_->stats().read_errors, 0u);
}

TEST_F(SpoolTest, AckDeletesOnlyFullyAckedSegments) {
  open_spool(options(200));
  for (std::uint64_t seq = 1; seq <= 6; ++seq) append(seq, 100);
  ASSERT_EQ(segment_files(), (std::vector<fs::path>{dir_ / segment_name(1), dir_ / segment_name(3),
                                                    dir_ / segment_name(5)}));
  ASSERT_TRUE(spool_->ack(3));  // segment 3 still holds 4
  EXPECT_EQ(segment_files(),
            (std::vector<fs::path>{dir_ / segment_name(3), dir_ / segment_name(5)}));
  EXPECT_EQ(read_all(), (std::vector<std::uint64_t>{4, 5, 6}));
  EXPECT_EQ(spool_->stats().segments, 2u);
  EXPECT_EQ(spool_->stats().bytes, 4 * (kHeader + 100));

  ASSERT_TRUE(spool_->ack(2));  // stale: no-op
  EXPECT_EQ(spool_->acked_seq(), 3u);

  ASSERT_TRUE(spool_->ack(6));  // everything: the sealed segments go, the active one stays
  EXPECT_EQ(segment_files(), (std::vector<fs::path>{dir_ / segment_name(5)}));
  EXPECT_EQ(spool_->stats().segments, 1u);
  EXPECT_EQ(spool_->stats().bytes, 2 * (kHeader + 100));
  EXPECT_EQ(spool_->stats().batches_pending, 0u);
  EXPECT_EQ(read_all(), (std::vector<std::uint64_t>{}));

  append(7, 100);  // segment 5 is full: it is sealed, 7 starts the next
  EXPECT_EQ(segment_files(),
            (std::vector<fs::path>{dir_ / segment_name(5), dir_ / segment_name(7)}));
  EXPECT_EQ(read_all(), (std::vector<std::uint64_t>{7}));
  ASSERT_TRUE(spool_->ack(7));  // now sealed and wholly acked, 5 goes; 7 is active
  EXPECT_EQ(segment_files(), (std::vector<fs::path>{dir_ / segment_name(7)}));
}

TEST_F(SpoolTest, AcksOfTheActiveSegmentCreateAndDeleteNothing) {
  // The agent's steady state: each batch acked soon after it is appended. One segment file
  // takes them all; the cursor waits for checkpoint().
  open_spool(options());
  for (std::uint64_t seq = 1; seq <= 50; ++seq) {
    append(seq, 100);
    ASSERT_TRUE(spool_->ack(seq));
    ASSERT_EQ(segment_files(), (std::vector<fs::path>{dir_ / segment_name(1)})) << seq;
  }
  ASSERT_TRUE(spool_->checkpoint());
  open_spool(options());
  EXPECT_EQ(spool_->acked_seq(), 50u);
  EXPECT_EQ(spool_->last_seq(), 50u);
  EXPECT_TRUE(segment_files().empty());  // nothing pending: removed at open
  append(51, 10);
  EXPECT_EQ(read_all(), (std::vector<std::uint64_t>{51}));
}

ino_t inode_of(const fs::path& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_ino;
}

TEST_F(SpoolTest, AnAckedSegmentsFileStartsTheNextSegment) {
  // 116-byte records, 2 per 200-byte segment: segments start at 1, 3, 5, ...
  open_spool(options(200));
  for (std::uint64_t seq = 1; seq <= 4; ++seq) append(seq, 100);
  const ino_t first = inode_of(dir_ / segment_name(1));
  ASSERT_TRUE(spool_->ack(2));  // segment 1 is emptied: its file becomes the spare
  EXPECT_EQ(segment_files(), (std::vector<fs::path>{dir_ / segment_name(3)}));
  ASSERT_TRUE(fs::exists(dir_ / "spare"));
  EXPECT_EQ(inode_of(dir_ / "spare"), first);
  EXPECT_EQ(spool_->stats().spare_bytes, 2 * (kHeader + 100));

  append(5, 60);  // segment 3 is full: 5 starts in the spare's file, over records 1 and 2
  EXPECT_FALSE(fs::exists(dir_ / "spare"));
  EXPECT_EQ(inode_of(dir_ / segment_name(5)), first);
  EXPECT_EQ(spool_->stats().segments_reused, 1u);
  EXPECT_EQ(spool_->stats().spare_bytes, 0u);
  EXPECT_EQ(spool_->stats().bytes, 2 * (kHeader + 100) + kHeader + 60);  // records, not files
  EXPECT_EQ(read_all(), (std::vector<std::uint64_t>{3, 4, 5}));

  // The file still holds the end of record 2 past record 5 and its end marker: a restart stops
  // at the marker, counts nothing corrupt and brings nothing old back.
  open_spool(options(200));
  EXPECT_EQ(spool_->stats().corrupt_records_recovered, 0u);
  EXPECT_EQ(spool_->stats().batches_pending, 3u);
  EXPECT_EQ(spool_->stats().bytes, 2 * (kHeader + 100) + kHeader + 60);
  EXPECT_EQ(read_all(), (std::vector<std::uint64_t>{3, 4, 5}));
  append(6, 100);  // continues after 5 in the reused file, marker moved along
  open_spool(options(200));
  EXPECT_EQ(spool_->stats().corrupt_records_recovered, 0u);
  EXPECT_EQ(read_all(), (std::vector<std::uint64_t>{3, 4, 5, 6}));
  // Records 5 and 6 and the marker (208 bytes) fit in the old file: it keeps its size.
  EXPECT_EQ(fs::file_size(dir_ / segment_name(5)), 2 * (kHeader + 100));

  // A spare found at open is taken too.
  ASSERT_TRUE(spool_->ack(4));  // segment 3 goes: the spare again
  const ino_t third = inode_of(dir_ / "spare");
  open_spool(options(200));
  EXPECT_EQ(spool_->stats().spare_bytes, 2 * (kHeader + 100));
  append(7, 10);  // fills segment 5 (218 bytes of records)
  append(8, 10);  // 8 starts in segment 3's old file
  EXPECT_EQ(inode_of(dir_ / segment_name(8)), third);
  EXPECT_EQ(read_all(), (std::vector<std::uint64_t>{5, 6, 7, 8}));
  open_spool(options(200));
  EXPECT_EQ(read_all(), (std::vector<std::uint64_t>{5, 6, 7, 8}));
  EXPECT_EQ(spool_->stats().corrupt_records_recovered, 0u);
}

TEST_F(SpoolTest, ACrashInAReusedFileNeverBringsItsOldRecordsBack) {
  // What a crash can leave in a reused file: the newest record and its end marker written in
  // part, the file's old bytes in the rest. Recovery keeps the records written whole, and
  // nothing of the file's earlier life, at every point the write could have stopped.
  open_spool(options(250));
  for (std::uint64_t seq = 1; seq <= 4; ++seq) append(seq, 120);  // segments 1 and 3
  ASSERT_TRUE(spool_->ack(2));
  const std::vector<char> old = read_file(dir_ / "spare");
  ASSERT_EQ(old.size(), 2 * (kHeader + 120));
  append(5, 100);  // starts segment 5 in the spare
  append(6, 50);
  spool_.reset();
  const fs::path seg = dir_ / segment_name(5);
  const std::vector<char> full = read_file(seg);
  const std::size_t last_start = kHeader + 100, last_end = last_start + kHeader + 50;
  ASSERT_EQ(full.size(), old.size());  // the new records and marker fit in the old file
  for (std::size_t cut = last_start; cut <= last_end + kHeader; ++cut) {
    SCOPED_TRACE("written up to " + std::to_string(cut));
    std::vector<char> data = full;
    std::copy(old.begin() + static_cast<std::ptrdiff_t>(cut),
              old.begin() + static_cast<std::ptrdiff_t>(last_end + kHeader),
              data.begin() + static_cast<std::ptrdiff_t>(cut));
    write_file(seg, data, data.size());
    open_spool(options(250));
    const std::vector<std::uint64_t> want = cut >= last_end ? std::vector<std::uint64_t>{3, 4, 5, 6}
                                                            : std::vector<std::uint64_t>{3, 4, 5};
    EXPECT_EQ(read_all(), want);
    EXPECT_EQ(spool_->last_seq(), want.back());
    EXPECT_EQ(spool_->stats().corrupt_records_recovered, cut == last_end + kHeader ? 0u : 1u);
    // Appending goes on after the last good record, and survives the next restart.
    append(7, 30);
    open_spool(options(250));
    std::vector<std::uint64_t> after = want;
    after.push_back(7);
    EXPECT_EQ(read_all(), after);
    EXPECT_EQ(spool_->stats().corrupt_records_recovered, 0u);
    spool_.reset();
    write_file(seg, full, full.size());  // as the crash found it, for the next round
  }
}

TEST_F(SpoolTest, BatchesDroppedForTheSizeLimitLeaveNoSpare) {
  open_spool(options(200, 500));
  for (std::uint64_t seq = 1; seq <= 10; ++seq) append(seq, 100);
  EXPECT_GT(spool_->stats().batches_dropped_full, 0u);
  EXPECT_FALSE(fs::exists(dir_ / "spare"));
  EXPECT_EQ(spool_->stats().spare_bytes, 0u);
}

TEST_F(SpoolTest, SizeLimitDropsOldestSegmentsAndCounts) {
  // 116-byte records, 2 per segment, at most 500 bytes before the oldest goes.
  open_spool(options(200, 500));
  for (std::uint64_t seq = 1; seq <= 20; ++seq) {
    append(seq, 100);
    const SpoolStats& st = spool_->stats();
    EXPECT_LE(st.bytes, 500u + 2 * (kHeader + 100)) << seq;
    EXPECT_EQ(st.batches_pending + st.batches_dropped_full, seq);
    EXPECT_EQ(st.bytes_dropped_full, st.batches_dropped_full * (kHeader + 100));
    EXPECT_EQ(segment_files().size(), st.segments);
  }
  const SpoolStats& st = spool_->stats();
  EXPECT_EQ(st.batches_dropped_full, 16u);  // 4 survive: 2 full segments of 232 bytes each
  const std::vector<std::uint64_t> left = read_all();
  EXPECT_EQ(left, (std::vector<std::uint64_t>{17, 18, 19, 20}));
  EXPECT_EQ(spool_->last_seq(), 20u);
}

TEST_F(SpoolTest, SizeLimitNeverDropsActiveSegment) {
  open_spool(options(1000, 1000));
  append(1, 3000);  // one batch bigger than the whole limit still stays
  EXPECT_EQ(read_all(), (std::vector<std::uint64_t>{1}));
  append(2, 10);  // rolls; segment 1 is now sealed and over the limit
  EXPECT_EQ(read_all(), (std::vector<std::uint64_t>{2}));
  EXPECT_EQ(spool_->stats().batches_dropped_full, 1u);
  EXPECT_EQ(spool_->stats().bytes_dropped_full, kHeader + 3000);
}

TEST_F(SpoolTest, LastSeqSurvivesRestartWithEverythingAcked) {
  open_spool(options(200));
  for (std::uint64_t seq = 1; seq <= 5; ++seq) append(seq, 100);
  ASSERT_TRUE(spool_->ack(5));  // deletes the sealed 1 and 3: the cursor is durable first
  EXPECT_EQ(segment_files(), (std::vector<fs::path>{dir_ / segment_name(5)}));

  open_spool(options(200));
  EXPECT_TRUE(segment_files().empty());  // 5 held nothing pending
  EXPECT_EQ(spool_->last_seq(), 5u);
  EXPECT_EQ(spool_->acked_seq(), 5u);
  EXPECT_EQ(spool_->stats().batches_pending, 0u);
  std::vector<std::byte> p;
  std::uint64_t seq = 0;
  EXPECT_FALSE(spool_->read_next(0, p, seq));
  Status reused = spool_->append(5, make_payload(5, 10));
  EXPECT_FALSE(reused);
  EXPECT_NE(reused.message().find("last_seq"), std::string::npos) << reused.message();
  append(6, 10);
}

TEST_F(SpoolTest, LastSeqComesFromCursorWhenTailIsTorn) {
  open_spool(options(100));
  append(1, 40);
  append(2, 40);
  append(3, 40);                // segment 1 (112 bytes) is sealed; 3 starts segment 3
  ASSERT_TRUE(spool_->ack(3));  // deletes segment 1: the cursor now says acked 3, last 3
  append(4, 40);
  spool_.reset();
  // Only the cursor remembers 3 now if 3 and the torn 4 are cut away.
  fs::resize_file(dir_ / segment_name(3), 10);
  open_spool(options(100));
  EXPECT_EQ(spool_->last_seq(), 3u);
  EXPECT_EQ(spool_->stats().corrupt_records_recovered, 1u);
}

TEST_F(SpoolTest, ReadNextOrderingWithGaps) {
  open_spool(options());
  append(10, 5);
  append(20, 5);
  append(30, 5);
  std::vector<std::byte> p;
  std::uint64_t seq = 0;
  ASSERT_TRUE(spool_->read_next(0, p, seq));
  EXPECT_EQ(seq, 10u);
  ASSERT_TRUE(spool_->read_next(10, p, seq));
  EXPECT_EQ(seq, 20u);
  ASSERT_TRUE(spool_->read_next(15, p, seq));
  EXPECT_EQ(seq, 20u);
  ASSERT_TRUE(spool_->read_next(29, p, seq));
  EXPECT_EQ(seq, 30u);
  EXPECT_EQ(p, make_payload(30, 5));
  EXPECT_FALSE(spool_->read_next(30, p, seq));
  ASSERT_TRUE(spool_->ack(20));
  ASSERT_TRUE(spool_->read_next(0, p, seq));
  EXPECT_EQ(seq, 30u);
}

TEST_F(SpoolTest, ForeignFilesAreIgnoredAndCounted) {
  fs::create_directories(dir_ / "subdir");
  std::ofstream(dir_ / "README") << "not a segment";
  std::ofstream(dir_ / "123.spool") << "short name";
  std::ofstream(dir_ / "0000000000000000000a.spool") << "not digits";
  std::ofstream(dir_ / "99999999999999999999.spool") << "over uint64";
  open_spool(options());
  EXPECT_EQ(spool_->stats().foreign_files_ignored, 5u);
  EXPECT_EQ(spool_->stats().segments, 0u);
  append(1, 10);
  EXPECT_EQ(read_all(), (std::vector<std::uint64_t>{1}));
  EXPECT_TRUE(fs::exists(dir_ / "README"));  // never deleted
  EXPECT_TRUE(fs::exists(dir_ / "123.spool"));
}

TEST_F(SpoolTest, AFullFileSystemStillTakesTheAcksThatFreeIt) {
  // On a file system with no block left, acked segments can go only once the cursor acking
  // them is written: the spool's reserve file gives up its space for it. A real tmpfs,
  // filled to the last block by the spool and a filler file.
  ASSERT_NO_FATAL_FAILURE(mount_small_tmpfs());
  open_spool(options(16 << 10));
  EXPECT_EQ(fs::file_size(dir_ / "reserve"), 16u << 10);
  std::uint64_t seq = 0;
  while (spool_->append(seq + 1, make_payload(seq + 1, 4000))) ++seq;
  ASSERT_GT(seq, 20u);
  ASSERT_NO_FATAL_FAILURE(fill_file_system());

  const Status acked = spool_->ack(seq);
  ASSERT_TRUE(acked) << acked.message();
  EXPECT_EQ(spool_->stats().reserve_used, 1u);
  EXPECT_LE(spool_->stats().segments, 1u);    // every sealed segment went
  EXPECT_TRUE(fs::exists(dir_ / "reserve"));  // made again from the freed space
  // And the cursor it wrote is the one a restart reads.
  open_spool(options(16 << 10));
  EXPECT_EQ(spool_->acked_seq(), seq);
  EXPECT_EQ(spool_->last_seq(), seq);
  EXPECT_EQ(spool_->stats().foreign_files_ignored, 2u);  // filler and probe, not the reserve
}

TEST_F(SpoolTest, AFullFileSystemTakesTheSparesSpaceForTheNextBatch) {
  // The spare is disk the spool holds for speed only: with no block left, an append gets it.
  ASSERT_NO_FATAL_FAILURE(mount_small_tmpfs());
  // 4,016-byte records, 5 per 16 KiB segment (it rolls once past): 1-5 in segment 1, then 6.
  open_spool(options(16 << 10));
  for (std::uint64_t seq = 1; seq <= 8; ++seq) append(seq, 4000);
  ASSERT_TRUE(spool_->ack(5));
  ASSERT_TRUE(fs::exists(dir_ / "spare"));
  ASSERT_NO_FATAL_FAILURE(fill_file_system());

  append(9, 4000);  // into segment 6, on the spare's blocks
  EXPECT_FALSE(fs::exists(dir_ / "spare"));
  EXPECT_EQ(spool_->stats().spare_bytes, 0u);
  EXPECT_EQ(read_all(), (std::vector<std::uint64_t>{6, 7, 8, 9}));
  // The spare's 20 KiB hold a few batches more; then the disk is full again.
  std::uint64_t seq = 9;
  while (seq < 20 && spool_->append(seq + 1, make_payload(seq + 1, 4000))) ++seq;
  EXPECT_LT(seq, 20u);
}

TEST_F(SpoolTest, CorruptCursorIsCountedNotFatal) {
  open_spool(options());
  append(1, 10);
  append(2, 10);
  ASSERT_TRUE(spool_->ack(1));
  spool_.reset();
  std::ofstream(dir_ / "acked", std::ios::trunc) << "garbage";
  open_spool(options());
  EXPECT_EQ(spool_->stats().corrupt_records_recovered, 1u);
  EXPECT_EQ(spool_->acked_seq(), 0u);
  EXPECT_EQ(read_all(), (std::vector<std::uint64_t>{1, 2}));  // re-sent, not lost
}

TEST_F(SpoolTest, RejectsBadSequencesAndAcks) {
  open_spool(options());
  append(5, 10);
  EXPECT_FALSE(spool_->append(5, make_payload(5, 10)));
  EXPECT_FALSE(spool_->append(4, make_payload(4, 10)));
  EXPECT_FALSE(spool_->ack(6));  // never appended
  EXPECT_EQ(spool_->acked_seq(), 0u);
  EXPECT_TRUE(spool_->ack(5));
}

TEST_F(SpoolTest, RejectsSecondOpenOfSameDirectory) {
  open_spool(options());
  std::unique_ptr<Spool> other;
  Status s = Spool::open(options(), other);
  EXPECT_FALSE(s);
  EXPECT_NE(s.message().find("locked"), std::string::npos) << s.message();
}

TEST_F(SpoolTest, RejectsInvalidOptions) {
  std::unique_ptr<Spool> out;
  EXPECT_FALSE(Spool::open(SpoolOptions{}, out));
  EXPECT_FALSE(Spool::open(options(0), out));
  EXPECT_FALSE(Spool::open(options(1000, 999), out));
  EXPECT_EQ(out, nullptr);
}

TEST_F(SpoolTest, SyncEveryAppendAndExplicitSync) {
  SpoolOptions o = options(200);
  o.sync_every_append = true;
  open_spool(o);
  for (std::uint64_t seq = 1; seq <= 5; ++seq) append(seq, 100);
  EXPECT_TRUE(spool_->sync());
  open_spool(options(200));
  EXPECT_TRUE(spool_->sync());  // nothing written yet: no-op
  EXPECT_EQ(read_all().size(), 5u);
}

}  // namespace
}  // namespace citywatch::agent
