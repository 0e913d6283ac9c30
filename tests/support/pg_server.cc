#include "tests/support/pg_server.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>
#include <vector>

namespace citywatch::testing {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr auto kInitdbTimeout = 60s;
constexpr auto kReadyTimeout = 30s;
constexpr auto kStopTimeout = 10s;
constexpr int kLaunchAttempts = 5;  // a new port each time the chosen one was taken meanwhile
constexpr const char* kRole = "citywatch";
constexpr const char* kSuperuser = "postgres";

std::string errno_text(int err) { return std::strerror(err); }

bool is_executable(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

bool has_server_binaries(const std::string& dir) {
  return is_executable(dir + "/initdb") && is_executable(dir + "/postgres");
}

// The directory holding initdb and postgres: $CITYWATCH_PG_BINDIR, else the newest
// /usr/lib/postgresql/<major>/bin (Debian keeps them off PATH), else a PATH entry.
Status find_bindir(std::string* out) {
  if (const char* env = std::getenv("CITYWATCH_PG_BINDIR"); env != nullptr && *env != '\0') {
    if (!has_server_binaries(env)) {
      return Status::error(std::string("CITYWATCH_PG_BINDIR=") + env +
                           " holds no executable initdb and postgres");
    }
    *out = env;
    return Status::ok();
  }
  int best = -1;
  if (DIR* d = ::opendir("/usr/lib/postgresql"); d != nullptr) {
    while (const dirent* e = ::readdir(d)) {
      const std::string name = e->d_name;
      if (name.empty() || !std::all_of(name.begin(), name.end(), ::isdigit) || name.size() > 4) {
        continue;
      }
      const int major = std::stoi(name);
      if (major > best && has_server_binaries("/usr/lib/postgresql/" + name + "/bin")) {
        best = major;
      }
    }
    ::closedir(d);
  }
  if (best >= 0) {
    *out = "/usr/lib/postgresql/" + std::to_string(best) + "/bin";
    return Status::ok();
  }
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path != nullptr ? path : "");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    if (!dir.empty() && has_server_binaries(dir)) {
      *out = dir;
      return Status::ok();
    }
  }
  return Status::error(
      "PostgreSQL server binaries not found: no initdb and postgres in $CITYWATCH_PG_BINDIR, "
      "/usr/lib/postgresql/<version>/bin or PATH. Install Debian's postgresql package "
      "(scripts/install-deps.sh does), or set CITYWATCH_PG_BINDIR");
}

// Credentials a child switches to before exec (root only: PostgreSQL refuses to run as root).
struct Creds {
  bool drop = false;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;
};

Status lookup_user(const char* name, std::string* user, Creds* creds) {
  std::vector<char> buf(16384);
  passwd pw{};
  passwd* found = nullptr;
  if (::getpwnam_r(name, &pw, buf.data(), buf.size(), &found) != 0 || found == nullptr) {
    return Status::error(std::string("no user ") + name);
  }
  if (pw.pw_uid == 0) return Status::error(std::string("user ") + name + " has uid 0");
  creds->drop = true;
  creds->uid = pw.pw_uid;
  creds->gid = pw.pw_gid;
  int n = 64;
  creds->groups.assign(n, 0);
  while (::getgrouplist(name, pw.pw_gid, creds->groups.data(), &n) < 0) {
    creds->groups.assign(static_cast<size_t>(n) + 64, 0);
    n = static_cast<int>(creds->groups.size());
  }
  creds->groups.resize(n);
  *user = name;
  return Status::ok();
}

// What a child failed at before exec, sent to the parent through a close-on-exec pipe.
struct ChildError {
  int step;
  int err;
};
constexpr const char* kSteps[] = {"open /dev/null", "setgroups", "setgid", "setuid",
                                  "prctl",          "chdir",     "exec"};

// Forks and execs argv[0] with env, stdin from /dev/null, stdout and stderr appended to
// log_path, in cwd, as creds; the child gets pdeathsig when this thread dies. No allocation
// happens between fork and exec (this process may have other threads).
Status spawn(const std::vector<std::string>& args, const std::vector<std::string>& env,
             const std::string& cwd, const std::string& log_path, const Creds& creds, int pdeathsig,
             pid_t* pid_out) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);

  const int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) return Status::error("cannot open " + log_path + ": " + errno_text(errno));
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    const int err = errno;
    ::close(log_fd);
    return Status::error("pipe2: " + errno_text(err));
  }
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    const int err = errno;
    ::close(log_fd);
    ::close(pipe_fds[0]);
    ::close(pipe_fds[1]);
    return Status::error("fork: " + errno_text(err));
  }
  if (pid == 0) {
    auto die = [&](int step) {
      const ChildError e{step, errno};
      [[maybe_unused]] ssize_t n = ::write(pipe_fds[1], &e, sizeof e);
      ::_exit(127);
    };
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    const int null_fd = ::open("/dev/null", O_RDONLY);
    if (null_fd < 0) die(0);
    ::dup2(null_fd, 0);
    ::dup2(log_fd, 1);
    ::dup2(log_fd, 2);
    if (creds.drop) {
      if (::setgroups(creds.groups.size(), creds.groups.data()) != 0) die(1);
      if (::setgid(creds.gid) != 0) die(2);
      if (::setuid(creds.uid) != 0) die(3);
    }
    // After setuid: a change of credentials clears the parent-death signal.
    if (::prctl(PR_SET_PDEATHSIG, pdeathsig) != 0) die(4);
    if (::getppid() != parent) ::_exit(126);  // the parent died before prctl
    if (::chdir(cwd.c_str()) != 0) die(5);
    // Descriptors the test holds (listening sockets, files) stay out of the server.
    if (::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
      for (int fd = 3; fd < 4096; ++fd) {
        if (fd != pipe_fds[1]) ::fcntl(fd, F_SETFD, FD_CLOEXEC);
      }
    }
    ::execve(argv[0], argv.data(), envp.data());
    die(6);
  }
  ::close(log_fd);
  ::close(pipe_fds[1]);
  ChildError e{};
  ssize_t n;
  do {
    n = ::read(pipe_fds[0], &e, sizeof e);
  } while (n < 0 && errno == EINTR);
  ::close(pipe_fds[0]);
  if (n == static_cast<ssize_t>(sizeof e)) {
    ::waitpid(pid, nullptr, 0);
    std::string what = kSteps[std::clamp(e.step, 0, 6)];
    if (e.step == 1 || e.step == 2 || e.step == 3) what += " to uid " + std::to_string(creds.uid);
    if (e.step == 5) what += " " + cwd;
    if (e.step == 6) what += " " + args[0];
    return Status::error("starting " + args[0] + ": " + what + " failed: " + errno_text(e.err));
  }
  *pid_out = pid;
  return Status::ok();
}

// Waits for pid to exit, at most `timeout`. True (and *status set) when it has exited.
bool wait_exit(pid_t pid, Clock::duration timeout, int* status) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    const pid_t r = ::waitpid(pid, status, WNOHANG);
    if (r == pid) return true;
    if (r < 0 && errno != EINTR) {
      *status = 0;  // ECHILD: reaped elsewhere (SIGCHLD ignored); it is gone either way
      return true;
    }
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(20ms);
  }
}

std::string describe_exit(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "was killed by signal " + std::to_string(WTERMSIG(status));
  return "stopped (status " + std::to_string(status) + ")";
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void print_log(const std::string& what, const std::string& path, size_t from = 0) {
  std::string text = read_file(path);
  text = from < text.size() ? text.substr(from) : std::string();
  std::cerr << "----- " << what << " (" << path << ") -----\n"
            << (text.empty() ? "(empty)\n" : text)
            << (text.empty() || text.back() == '\n' ? "" : "\n") << "----- end of " << what
            << " -----" << std::endl;
}

Status free_port(int* port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::error("socket: " + errno_text(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    const int err = errno;
    ::close(fd);
    return Status::error("picking a free port on 127.0.0.1: " + errno_text(err));
  }
  ::close(fd);
  *port = ntohs(addr.sin_port);
  return Status::ok();
}

Status random_hex(size_t bytes, std::string* out) {
  std::ifstream in("/dev/urandom", std::ios::binary);
  std::vector<unsigned char> raw(bytes);
  if (!in.read(reinterpret_cast<char*>(raw.data()), static_cast<std::streamsize>(bytes))) {
    return Status::error("cannot read /dev/urandom");
  }
  static constexpr char kHex[] = "0123456789abcdef";
  out->clear();
  for (unsigned char c : raw) {
    out->push_back(kHex[c >> 4]);
    out->push_back(kHex[c & 15]);
  }
  return Status::ok();
}

// A conninfo value: quoted when it holds anything but [A-Za-z0-9_./-].
std::string conninfo_value(const std::string& v) {
  const bool plain = !v.empty() && std::all_of(v.begin(), v.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '/' ||
           c == '-';
  });
  if (plain) return v;
  std::string q = "'";
  for (char c : v) {
    if (c == '\'' || c == '\\') q.push_back('\\');
    q.push_back(c);
  }
  return q + "'";
}

bool valid_db_name(const std::string& name) {
  if (name.empty() || name.size() > 63) return false;
  if (!(std::islower(static_cast<unsigned char>(name[0])) || name[0] == '_')) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::islower(static_cast<unsigned char>(c)) ||
           std::isdigit(static_cast<unsigned char>(c)) || c == '_';
  });
}

}  // namespace

Status PgServer::start(std::unique_ptr<PgServer>& out) {
  out.reset();
  std::unique_ptr<PgServer> server(new PgServer());
  Status s = server->init();
  if (!s) return Status::error("PgServer: " + s.message());  // the destructor cleans up
  out = std::move(server);
  return Status::ok();
}

Status PgServer::init() {
  if (Status s = find_bindir(&bindir_); !s) return s;

  Creds creds;
  if (::geteuid() == 0) {
    Status s = lookup_user("postgres", &user_, &creds);
    if (!s) {
      Status nobody = lookup_user("nobody", &user_, &creds);
      if (!nobody) {
        return Status::error(
            "running as root, and PostgreSQL refuses to: no unprivileged user to run it as (" +
            s.message() + ", " + nobody.message() + ")");
      }
    }
    as_other_user_ = true;
    uid_ = creds.uid;
    gid_ = creds.gid;
  }

  const char* tmp = std::getenv("TMPDIR");
  std::string tmpl =
      std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/citywatch-pg.XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) {
    return Status::error("cannot create a temp dir " + tmpl + ": " + errno_text(errno));
  }
  dir_ = tmpl;
  sockdir_ = dir_;
  log_path_ = dir_ + "/postgres.log";
  if (sockdir_.size() + std::strlen("/.s.PGSQL.65535") >= sizeof(sockaddr_un::sun_path)) {
    return Status::error("temp dir " + dir_ +
                         " is too long for a unix socket path; set TMPDIR shorter");
  }
  if (as_other_user_) {
    if (::chown(dir_.c_str(), uid_, gid_) != 0) {
      return Status::error("chown " + dir_ + " to " + user_ + ": " + errno_text(errno));
    }
    // The user must reach the dir: every parent must be searchable by it.
    pid_t probe = 0;
    Status s = spawn({"/usr/bin/test", "-w", dir_, "-a", "-x", dir_}, {"PATH=/usr/bin:/bin"}, "/",
                     dir_ + "/probe.log", creds, SIGKILL, &probe);
    if (!s) return s;
    int status = 0;
    if (!wait_exit(probe, 10s, &status)) {
      ::kill(probe, SIGKILL);
      ::waitpid(probe, &status, 0);
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      return Status::error("user " + user_ + " cannot write " + dir_ +
                           " (a parent directory is not searchable by it?); set TMPDIR to a "
                           "directory such as /tmp");
    }
    ::unlink((dir_ + "/probe.log").c_str());
  }

  if (Status s = random_hex(16, &password_); !s) return s;
  const std::string pwfile = dir_ + "/pwfile";
  {
    const int fd = ::open(pwfile.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) return Status::error("cannot create " + pwfile + ": " + errno_text(errno));
    const std::string line = password_ + "\n";
    const bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
    ::close(fd);
    if (!ok) return Status::error("cannot write " + pwfile);
    if (as_other_user_ && ::chown(pwfile.c_str(), uid_, gid_) != 0) {
      return Status::error("chown " + pwfile + ": " + errno_text(errno));
    }
  }

  // initdb: superuser `postgres` (the same password, unused: it comes in over the socket),
  // trust on the unix socket (only the owner can reach it: the dir is 0700), SCRAM over TCP.
  const std::string initdb_log = dir_ + "/initdb.log";
  const std::vector<std::string> env = {"PATH=/usr/bin:/bin", "LC_ALL=C", "TZ=UTC", "HOME=" + dir_};
  pid_t initdb = 0;
  Status s = spawn({bindir_ + "/initdb", "-D", dir_ + "/data", "-U", kSuperuser,
                    "--pwfile=" + pwfile, "--auth-local=trust", "--auth-host=scram-sha-256", "-E",
                    "UTF8", "--locale=C", "--no-sync", "--no-instructions"},
                   env, dir_, initdb_log, creds, SIGKILL, &initdb);
  if (!s) return s;
  int status = 0;
  if (!wait_exit(initdb, kInitdbTimeout, &status)) {
    ::kill(initdb, SIGKILL);
    ::waitpid(initdb, &status, 0);
    print_log("initdb log", initdb_log);
    return Status::error("initdb did not finish within " + std::to_string(kInitdbTimeout.count()) +
                         " s (log above)");
  }
  ::unlink(pwfile.c_str());
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    print_log("initdb log", initdb_log);
    return Status::error(bindir_ + "/initdb " + describe_exit(status) + " (log above)");
  }

  if (s = launch(); !s) return s;

  const std::string role_sql =
      std::string("CREATE ROLE ") + kRole + " LOGIN PASSWORD '" + password_ + "'";
  if (s = admin_exec(role_sql); !s) return s;
  if (s = admin_exec(std::string("CREATE DATABASE ") + kRole + " OWNER " + kRole +
                     " TEMPLATE template0");
      !s) {
    return s;
  }
  // The collector's way in: TCP, SCRAM, its own role.
  PGconn* conn = PQconnectdb(dsn().c_str());
  const bool ok = PQstatus(conn) == CONNECTION_OK;
  const std::string err = ok ? "" : PQerrorMessage(conn);
  PQfinish(conn);
  if (!ok) {
    print_log("postgres log", log_path_);
    return Status::error("role " + std::string(kRole) + " cannot log in over TCP: " + err);
  }
  return Status::ok();
}

Status PgServer::launch() {
  Creds creds;
  if (as_other_user_) {
    std::string user;
    if (Status s = lookup_user(user_.c_str(), &user, &creds); !s) return s;
  }
  const std::vector<std::string> env = {"PATH=/usr/bin:/bin", "LC_ALL=C", "TZ=UTC", "HOME=" + dir_};
  const bool keep_port = port_ != 0;  // restart(): clients hold DSNs with this port
  Status last;
  for (int attempt = 0; attempt < (keep_port ? 1 : kLaunchAttempts); ++attempt) {
    if (!keep_port) {
      if (Status s = free_port(&port_); !s) return s;
    }
    struct stat st {};
    const size_t log_from =
        ::stat(log_path_.c_str(), &st) == 0 ? static_cast<size_t>(st.st_size) : 0;
    pid_t pid = 0;
    Status s = spawn(
        {bindir_ + "/postgres", "-D", dir_ + "/data", "-c", "listen_addresses=127.0.0.1", "-c",
         "port=" + std::to_string(port_), "-c", "unix_socket_directories=" + sockdir_, "-c",
         "logging_collector=off", "-c", "shared_buffers=16MB", "-c", "max_connections=50"},
        env, dir_, log_path_, creds, SIGQUIT, &pid);
    if (!s) return s;
    pid_ = pid;
    last = wait_ready();
    if (last) return Status::ok();
    const std::string log = read_file(log_path_);
    const bool port_taken = log.find("could not bind", log_from) != std::string::npos ||
                            log.find("Address already in use", log_from) != std::string::npos;
    (void)stop();
    if (!port_taken) break;
    std::cerr << "PgServer: port " << port_ << " was taken meanwhile; trying another" << std::endl;
  }
  print_log("postgres log", log_path_);
  return Status::error(last.message() + " (log above)");
}

Status PgServer::wait_ready() {
  // Like pg_ctl -w: the postmaster marks its lock file "ready" once it accepts connections
  // (polling with connection attempts instead would fill the log with "starting up" lines).
  const std::string pidfile = dir_ + "/data/postmaster.pid";
  const std::string ping = "host=127.0.0.1 port=" + std::to_string(port_) +
                           " dbname=postgres user=postgres connect_timeout=2";
  const auto deadline = Clock::now() + kReadyTimeout;
  for (;;) {
    int status = 0;
    const pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_ || (r < 0 && errno == ECHILD)) {
      pid_ = 0;
      return Status::error("postgres " + describe_exit(status) +
                           " before accepting connections on 127.0.0.1:" + std::to_string(port_));
    }
    std::ifstream in(pidfile);
    std::string line, first;
    for (int n = 1; std::getline(in, line); ++n) {
      if (n == 1) first = line;
      // Line 8 is the status; PQPING_OK means accepting connections (no authentication).
      if (n == 8 && first == std::to_string(pid_) && line.rfind("ready", 0) == 0 &&
          PQping(ping.c_str()) == PQPING_OK) {
        return Status::ok();
      }
    }
    if (Clock::now() >= deadline) {
      return Status::error("postgres (pid " + std::to_string(pid_) +
                           ") did not accept connections on 127.0.0.1:" + std::to_string(port_) +
                           " within " + std::to_string(kReadyTimeout.count()) + " s");
    }
    std::this_thread::sleep_for(20ms);
  }
}

Status PgServer::stop() { return shutdown(SIGQUIT); }

Status PgServer::shutdown(int sig) {
  if (pid_ == 0) return Status::ok();
  const pid_t pid = pid_;
  int status = 0;
  // SIGQUIT: immediate shutdown; SIGINT: fast shutdown (a checkpoint, no crash recovery next
  // time). Either way the postmaster ends its backends first, then itself.
  ::kill(pid, sig);
  if (!wait_exit(pid, kStopTimeout, &status)) {
    std::cerr << "PgServer: postgres (pid " << pid << ") still running " << kStopTimeout.count()
              << " s after signal " << sig << "; sending SIGKILL" << std::endl;
    ::kill(pid, SIGKILL);
    if (!wait_exit(pid, kStopTimeout, &status)) {
      return Status::error("postgres (pid " + std::to_string(pid) + ") survived SIGKILL");
    }
  }
  pid_ = 0;
  return Status::ok();
}

Status PgServer::restart() {
  if (Status s = shutdown(SIGINT); !s) return s;
  if (dir_.empty() || port_ == 0)
    return Status::error("PgServer::restart: the server was never started");
  return launch();
}

PgServer::~PgServer() {
  Status s = stop();
  if (!s) std::cerr << "PgServer: " << s.message() << std::endl;
  if (dir_.empty()) return;
  if (const char* keep = std::getenv("CITYWATCH_PG_KEEP");
      keep != nullptr && *keep != '\0' && *keep != '0') {
    std::cerr << "PgServer: CITYWATCH_PG_KEEP is set; kept " << dir_ << std::endl;
    return;
  }
  std::error_code ec;
  // Backends of a SIGKILLed postmaster may still be on their way out: a few tries.
  for (int i = 0; i < 50; ++i) {
    ec.clear();
    std::filesystem::remove_all(dir_, ec);
    if (!ec) return;
    std::this_thread::sleep_for(100ms);
  }
  std::cerr << "PgServer: cannot remove " << dir_ << ": " << ec.message() << std::endl;
}

std::string PgServer::dsn() const { return dsn(kRole); }

std::string PgServer::dsn(const std::string& dbname) const {
  return "host=127.0.0.1 port=" + std::to_string(port_) + " dbname=" + conninfo_value(dbname) +
         " user=" + kRole + " password=" + password_ + " connect_timeout=10";
}

std::string PgServer::admin_dsn() const {
  return "host=" + conninfo_value(sockdir_) + " port=" + std::to_string(port_) +
         " dbname=postgres user=" + kSuperuser + " connect_timeout=10";
}

Status PgServer::admin_exec(const std::string& sql) const {
  PGconn* conn = PQconnectdb(admin_dsn().c_str());
  if (PQstatus(conn) != CONNECTION_OK) {
    const std::string err = PQerrorMessage(conn);
    PQfinish(conn);
    return Status::error("connecting as " + std::string(kSuperuser) + " over " + sockdir_ + ": " +
                         err);
  }
  PGresult* res = PQexec(conn, sql.c_str());
  const ExecStatusType st = PQresultStatus(res);
  const bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
  const std::string err = ok ? "" : PQresultErrorMessage(res);
  PQclear(res);
  PQfinish(conn);
  if (!ok) {
    // The statement may hold the password: name only its first words.
    return Status::error(sql.substr(0, sql.find(" PASSWORD")) + ": " + err);
  }
  return Status::ok();
}

Status PgServer::create_database(const std::string& name, std::string* dsn_out) {
  if (!valid_db_name(name)) {
    return Status::error("PgServer::create_database: '" + name +
                         "' is not a valid name ([a-z_][a-z0-9_]{0,62})");
  }
  if (pid_ == 0) return Status::error("PgServer::create_database: the server is stopped");
  Status s = admin_exec("CREATE DATABASE " + name + " OWNER " + kRole + " TEMPLATE template0");
  if (!s) return Status::error("PgServer::create_database: " + s.message());
  *dsn_out = dsn(name);
  return Status::ok();
}

std::string PgServer::create_database(const std::string& name) {
  std::string out;
  Status s = create_database(name, &out);
  if (!s) {
    std::cerr << s.message() << std::endl;
    return {};
  }
  return out;
}

std::string PgServer::log() const {
  return log_path_.empty() ? std::string() : read_file(log_path_);
}

}  // namespace citywatch::testing
