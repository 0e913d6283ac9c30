// ZeroedArray: a fixed-size array of trivially copyable T whose every element starts as
// all-zero bytes, taken from the kernel's zero pages instead of being written by a loop.
// For the capture path's big tables (flow slots, event budgets, probe rings): constructing
// them costs no memset and no page fault (unless asked to prefault: see Prefault below); a
// page is faulted in when first touched, and tables of 1 MiB or more are rounded up to
// whole 2 MiB and ask for transparent huge pages
// (MADV_HUGEPAGE; honoured when the kernel's THP mode is `madvise` or `always`), so a table
// probed at random costs one fault and few TLB misses per 2 MiB instead of per 4 KiB.
// All-zero bytes must be T's empty state.
//
// Allocation failure throws std::bad_alloc, as std::vector does (startup only). Thread-safety:
// as a plain array.
#pragma once

#include <cstddef>
#include <span>
#include <type_traits>
#include <utility>

namespace citywatch {

namespace zeroed_detail {
// Maps `bytes` of zero-filled anonymous memory (huge-page aligned and advised when large);
// `mapped` receives the length to give unmap(). Throws std::bad_alloc.
void* map(std::size_t bytes, std::size_t& mapped);
// Writes every page of [p, p + bytes) in one call (MADV_POPULATE_WRITE, Linux 5.14; nothing
// on older kernels, where the pages fault in as touched).
void prefault(void* p, std::size_t bytes) noexcept;
void unmap(void* p, std::size_t mapped) noexcept;
void rezero(void* p, std::size_t bytes) noexcept;  // memset: tables are cleared rarely
}  // namespace zeroed_detail

template <class T>
class ZeroedArray {
  static_assert(std::is_trivially_copyable_v<T> && std::is_trivially_destructible_v<T>,
                "ZeroedArray holds plain data: its elements are created by zero pages");

 public:
  ZeroedArray() = default;
  explicit ZeroedArray(std::size_t n) : size_(n) {
    if (n != 0) data_ = static_cast<T*>(zeroed_detail::map(n * sizeof(T), mapped_));
  }
  // For a table that will be written through, not probed here and there (a ring): its pages
  // are written now, in one call, instead of faulting in one by one as it fills (a fault
  // costs about ten times as much per page on the virtual machines agents run on).
  struct Prefault {};
  ZeroedArray(std::size_t n, Prefault) : ZeroedArray(n) {
    if (data_ != nullptr) zeroed_detail::prefault(data_, mapped_);
  }
  ZeroedArray(ZeroedArray&& o) noexcept
      : data_(std::exchange(o.data_, nullptr)),
        size_(std::exchange(o.size_, 0)),
        mapped_(std::exchange(o.mapped_, 0)) {}
  ZeroedArray& operator=(ZeroedArray&& o) noexcept {
    if (this != &o) {
      release();
      data_ = std::exchange(o.data_, nullptr);
      size_ = std::exchange(o.size_, 0);
      mapped_ = std::exchange(o.mapped_, 0);
    }
    return *this;
  }
  ZeroedArray(const ZeroedArray&) = delete;
  ZeroedArray& operator=(const ZeroedArray&) = delete;
  ~ZeroedArray() { release(); }

  T& operator[](std::size_t i) { return data_[i]; }
  const T& operator[](std::size_t i) const { return data_[i]; }
  T* data() { return data_; }
  const T* data() const { return data_; }
  std::size_t size() const { return size_; }
  T* begin() { return data_; }
  T* end() { return data_ + size_; }
  const T* begin() const { return data_; }
  const T* end() const { return data_ + size_; }
  operator std::span<T>() { return {data_, size_}; }

  // Every element back to all-zero bytes.
  void clear() noexcept {
    if (data_ != nullptr) zeroed_detail::rezero(data_, size_ * sizeof(T));
  }

 private:
  void release() noexcept {
    if (data_ != nullptr) zeroed_detail::unmap(data_, mapped_);
    data_ = nullptr;
  }

  T* data_ = nullptr;
  std::size_t size_ = 0;
  std::size_t mapped_ = 0;
};

}  // namespace citywatch
