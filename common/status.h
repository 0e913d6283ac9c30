// Status: the result of a control-path operation (config, startup, file I/O) that can fail
// with a message a person can act on. The data path uses small enum result codes instead.
//
// Thread-safety: plain value.
#pragma once

#include <string>
#include <utility>

namespace citywatch {

class [[nodiscard]] Status {
 public:
  Status() = default;
  static Status ok() { return Status(); }
  static Status error(std::string message) { return Status(std::move(message)); }

  bool is_ok() const { return !failed_; }
  explicit operator bool() const { return !failed_; }
  const std::string& message() const { return message_; }

 private:
  explicit Status(std::string message) : message_(std::move(message)), failed_(true) {}
  std::string message_;
  bool failed_ = false;
};

}  // namespace citywatch
