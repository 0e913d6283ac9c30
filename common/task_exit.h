// The completion of a co_spawn'ed coroutine, in place of asio::detached, which drops the
// exception a coroutine ends with, and the coroutine with it, unseen: a sender stops, and
// what it should have sent waits for ever.
//
//   TaskExit{"alertmanager sender", TaskExit::kFatal}: for a daemon's long-lived tasks. The
//     exception is logged with the task's name and thrown again, out of io_context::run(),
//     so the daemon ends with an error and systemd starts it again; what was not sent is on
//     disk (the agent's spool) or built again (alerts from the records that follow).
//   TaskExit{"ingest session", TaskExit::kLogged}: for one task per peer. Logged; the task
//     is over and what it held (the peer's connection) goes with it.
//
// Thread-safety: called on the io_context's thread, like any completion.
#pragma once

#include <exception>
#include <string>
#include <utility>

#include "common/log.h"

namespace citywatch {

class TaskExit {
 public:
  enum Mode : bool { kLogged = false, kFatal = true };
  TaskExit(std::string name, Mode mode) : name_(std::move(name)), mode_(mode) {}

  void operator()(const std::exception_ptr& e) const {
    if (!e) return;
    log::error(name_ + " ended by an exception: " + describe(e) +
               (mode_ == kFatal ? "; stopping" : ""));
    if (mode_ == kFatal) std::rethrow_exception(e);
  }

  static std::string describe(const std::exception_ptr& e) {
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& x) {
      return x.what();
    } catch (...) {
      return "an exception of unknown type";
    }
  }

 private:
  std::string name_;
  Mode mode_;
};

}  // namespace citywatch
