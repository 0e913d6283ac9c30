#include "common/config_reader.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace citywatch {
namespace {

class ConfigReaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "cfgXXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& text) {
    const auto p = dir_ / name;
    std::ofstream(p) << text;
    return p.string();
  }
  std::filesystem::path dir_;
};

struct Sample {
  std::string name = "default";
  std::int64_t count = 5;
  bool enabled = false;
  std::chrono::nanoseconds timeout{0};
  std::uint64_t size = 0;
  std::string host;
  std::uint16_t port = 0;
  std::string file;
};

Status read_sample(ConfigReader& r, Sample& s) {
  ConfigMap root = r.root();
  ConfigMap inner = root.map("inner");
  inner.get("name", s.name);
  inner.get("count", s.count, 0, 100);
  inner.get("enabled", s.enabled);
  inner.get_duration("timeout", s.timeout);
  inner.get_size("size", s.size);
  inner.get_endpoint("listen", s.host, s.port);
  inner.get_path("file", s.file, false, true);
  inner.done();
  root.done();
  return r.status();
}

TEST(ConfigReaderEdges, DuplicateKeysAreErrorsWithTheirLine) {
  ConfigReader r = ConfigReader::from_string("a:\n  b: 1\n  b: 2\nc: [1]\na: {}\n", "t.yaml", ".");
  const std::string m = r.status().message();
  EXPECT_NE(m.find("t.yaml:3:3: b: duplicate key"), std::string::npos) << m;
  EXPECT_NE(m.find("t.yaml:5:1: a: duplicate key"), std::string::npos) << m;
}

// A lone ',' made yaml-cpp's LoadAll() loop without end (rules_fuzz): the reader returns.
TEST(ConfigReaderEdges, ALoneCommaReturns) {
  ConfigReader r = ConfigReader::from_string(",", "t.yaml", ".");
  EXPECT_TRUE(r.status()) << r.status().message();  // one (null) document, not two
}

// What follows a `---` is not silently dropped: a second document is an error with its line,
// whether it is valid YAML, empty, or not YAML at all. A leading `---` and a closing `...`
// are one document.
TEST(ConfigReaderEdges, ASecondDocumentIsAnError) {
  for (const char* text :
       {"a: 1\n---\nagents: {allowed: [x]}\n", "a: 1\n---\n", "a: 1\n---\n[unclosed\n"}) {
    ConfigReader r = ConfigReader::from_string(text, "t.yaml", ".");
    const std::string m = r.status().message();
    EXPECT_FALSE(r.status()) << text;
    EXPECT_TRUE(m.find("second YAML document") != std::string::npos ||
                m.find("YAML syntax error") != std::string::npos)
        << m;
  }
  const std::string m =
      ConfigReader::from_string("a: 1\n---\nb: 2\n", "t.yaml", ".").status().message();
  EXPECT_NE(m.find("t.yaml:2:1: a second YAML document starts here"), std::string::npos) << m;
  EXPECT_NE(ConfigReader::from_string("a: 1\n...\nb: 2\n", "t.yaml", ".")
                .status()
                .message()
                .find("t.yaml:3:1: a second YAML document"),
            std::string::npos);
  // The first document's content may start on its marker line.
  EXPECT_NE(ConfigReader::from_string("--- {a: 1}\n--- {b: 2}\n", "t.yaml", ".")
                .status()
                .message()
                .find("t.yaml:2:1: a second YAML document"),
            std::string::npos);
  for (const char* text : {"--- {a: 1}\n", "--- # c\na: 1\n", "---\na: 1\n", "a: 1\n...\n",
                           "---\na: 1\n...\n", "# c\n---\na: 1\n", "%YAML 1.2\n---\na: 1\n",
                           "a: |\n  ---\n  text\n", "a: 1 # ---\n", "a: ---x\n"}) {
    ConfigReader r = ConfigReader::from_string(text, "t.yaml", ".");
    EXPECT_TRUE(r.status()) << text << ": " << r.status().message();
  }
}

TEST(ConfigReaderEdges, OnlyRegularFilesAreRead) {
  EXPECT_NE(ConfigReader::from_file("/dev/zero").status().message().find("not a regular file"),
            std::string::npos);
  EXPECT_NE(ConfigReader::from_file("/").status().message().find("is a directory"),
            std::string::npos);
}

TEST(ConfigReaderEdges, ThePackagedExampleIsRefusedUntilEdited) {
  ConfigReader r =
      ConfigReader::from_string("# shipped\nexample_config: true\n", "agent.yaml", ".");
  ConfigMap root = r.root();
  root.reject_example_marker();
  root.done();
  EXPECT_EQ(r.status().message(),
            "agent.yaml:2:17: example_config: this is the packaged example configuration; edit "
            "agent.yaml for this site, then delete the example_config line");
  ConfigReader edited = ConfigReader::from_string("example_config: false\n", "agent.yaml", ".");
  ConfigMap edited_root = edited.root();
  edited_root.reject_example_marker();
  edited_root.done();
  EXPECT_TRUE(edited.status()) << edited.status().message();
}

TEST(ConfigReaderEdges, ListenAddressesMustBeIpLiterals) {
  ConfigReader r = ConfigReader::from_string("l: localhost:0\nm: '[::1]:9'\n", "t.yaml", ".");
  ConfigMap root = r.root();
  std::string host;
  std::uint16_t port = 0;
  root.get_listen("l", host, port);
  root.get_listen("m", host, port);
  const std::string m = r.status().message();
  EXPECT_NE(m.find("t.yaml:1:4: l: expected an IP address to listen on"), std::string::npos) << m;
  EXPECT_EQ(m.find("m:"), std::string::npos) << m;
  EXPECT_EQ(host, "::1");
}

TEST_F(ConfigReaderTest, ReadsEveryType) {
  write("data.txt", "x");
  const auto f = write("ok.yaml",
                       "inner:\n  name: abc\n  count: 42\n  enabled: yes\n  timeout: 1.5s\n"
                       "  size: 16MiB\n  listen: '[::1]:7443'\n  file: data.txt\n");
  auto r = ConfigReader::from_file(f);
  Sample s;
  ASSERT_TRUE(read_sample(r, s)) << read_sample(r, s).message();
  EXPECT_EQ(s.name, "abc");
  EXPECT_EQ(s.count, 42);
  EXPECT_TRUE(s.enabled);
  EXPECT_EQ(s.timeout, std::chrono::milliseconds(1500));
  EXPECT_EQ(s.size, 16u << 20);
  EXPECT_EQ(s.host, "::1");
  EXPECT_EQ(s.port, 7443);
  EXPECT_EQ(s.file, (dir_ / "data.txt").string());  // resolved against the file's folder
}

TEST_F(ConfigReaderTest, AbsentKeysKeepDefaults) {
  const auto f = write("empty.yaml", "inner: {}\n");
  auto r = ConfigReader::from_file(f);
  Sample s;
  ASSERT_TRUE(read_sample(r, s));
  EXPECT_EQ(s.name, "default");
  EXPECT_EQ(s.count, 5);
}

TEST_F(ConfigReaderTest, UnknownKeyNamesFileLineAndKey) {
  const auto f = write("typo.yaml", "inner:\n  name: a\n  cuont: 3\n");
  auto r = ConfigReader::from_file(f);
  Sample s;
  const Status st = read_sample(r, s);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.message(), f + ":3:3: inner.cuont: unknown key");
}

TEST_F(ConfigReaderTest, WrongTypesAreReportedTogether) {
  const auto f = write("types.yaml",
                       "inner:\n  count: many\n  enabled: maybe\n  timeout: 5 parsecs\n"
                       "  size: 3 bushels\n  listen: nowhere\n  name: [a, b]\n");
  auto r = ConfigReader::from_file(f);
  Sample s;
  const Status st = read_sample(r, s);
  ASSERT_FALSE(st);
  const std::string& m = st.message();
  EXPECT_NE(m.find(f + ":2:10: inner.count: expected an integer, got 'many'"), std::string::npos)
      << m;
  EXPECT_NE(m.find(":3:12: inner.enabled: expected true or false"), std::string::npos) << m;
  EXPECT_NE(m.find(":4:12: inner.timeout: expected a duration"), std::string::npos) << m;
  EXPECT_NE(m.find(":5:9: inner.size: expected a size"), std::string::npos) << m;
  EXPECT_NE(m.find(":6:11: inner.listen: expected HOST:PORT"), std::string::npos) << m;
  EXPECT_NE(m.find(":7:9: inner.name: expected a string, got a list"), std::string::npos) << m;
}

TEST_F(ConfigReaderTest, OutOfRangeInteger) {
  const auto f = write("range.yaml", "inner:\n  count: 1000\n");
  auto r = ConfigReader::from_file(f);
  Sample s;
  const Status st = read_sample(r, s);
  ASSERT_FALSE(st);
  EXPECT_NE(st.message().find("expected an integer from 0 to 100, got 1000"), std::string::npos);
}

TEST_F(ConfigReaderTest, MissingReferencedFile) {
  const auto f = write("file.yaml", "inner:\n  file: nope.pem\n");
  auto r = ConfigReader::from_file(f);
  Sample s;
  const Status st = read_sample(r, s);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.message(), f + ":2:9: inner.file: no such file: " + (dir_ / "nope.pem").string());
}

TEST_F(ConfigReaderTest, MissingConfigFile) {
  auto r = ConfigReader::from_file((dir_ / "absent.yaml").string());
  const Status st = r.status();
  ASSERT_FALSE(st);
  EXPECT_NE(st.message().find("absent.yaml: cannot open configuration file"), std::string::npos);
}

TEST_F(ConfigReaderTest, SyntaxErrorHasLine) {
  const auto f = write("bad.yaml", "inner:\n  name: [unclosed\n");
  auto r = ConfigReader::from_file(f);
  const Status st = r.status();
  ASSERT_FALSE(st);
  EXPECT_NE(st.message().find(f + ":"), std::string::npos);
  EXPECT_NE(st.message().find("YAML syntax error"), std::string::npos);
}

TEST_F(ConfigReaderTest, RequiredKeyMissing) {
  const auto f = write("req.yaml", "other: 1\n");
  auto r = ConfigReader::from_file(f);
  ConfigMap root = r.root();
  root.map("inner", true);
  std::int64_t v = 0;
  root.get("other", v, 0, 10);
  root.done();
  ASSERT_FALSE(r.status());
  EXPECT_NE(r.status().message().find("inner: missing required key"), std::string::npos);
}

TEST(ConfigParse, DurationsSizesEndpoints) {
  std::chrono::nanoseconds d;
  EXPECT_TRUE(parse_duration("250ms", d));
  EXPECT_EQ(d, std::chrono::milliseconds(250));
  EXPECT_TRUE(parse_duration("2m", d));
  EXPECT_EQ(d, std::chrono::minutes(2));
  EXPECT_TRUE(parse_duration("10", d));
  EXPECT_EQ(d, std::chrono::seconds(10));
  EXPECT_FALSE(parse_duration("-1s", d));
  EXPECT_FALSE(parse_duration("1e300h", d));
  EXPECT_FALSE(parse_duration("", d));
  std::uint64_t s;
  EXPECT_TRUE(parse_size("1GiB", s));
  EXPECT_EQ(s, 1ull << 30);
  EXPECT_FALSE(parse_size("-5", s));
  EXPECT_FALSE(parse_size("99999999999999999999TiB", s));
  std::string h;
  std::uint16_t p;
  EXPECT_TRUE(parse_endpoint("0.0.0.0:0", h, p));
  EXPECT_EQ(p, 0);
  EXPECT_FALSE(parse_endpoint("::1:80", h, p));  // IPv6 needs brackets
  EXPECT_FALSE(parse_endpoint("host:65536", h, p));
  EXPECT_FALSE(parse_endpoint(":80", h, p));
}

}  // namespace
}  // namespace citywatch
