#include "common/label_text.h"

#include <gtest/gtest.h>

#include <string>

namespace citywatch {
namespace {

const std::string kReplacement = "\xEF\xBF\xBD";

TEST(LabelText, ValidUtf8IsKeptAndControlCharactersGo) {
  EXPECT_EQ(label_text("GigabitEthernet0/1"), "GigabitEthernet0/1");
  EXPECT_EQ(label_text("B\xC3\xBCro 2. OG \xE2\x86\x92 Keller \xF0\x9F\x93\xA1"),
            "B\xC3\xBCro 2. OG \xE2\x86\x92 Keller \xF0\x9F\x93\xA1");
  EXPECT_EQ(label_text(std::string("uplink\0\0\0", 9)), "uplink");
  EXPECT_EQ(label_text("a\r\nb\tc\x7f"), "abc");
  EXPECT_EQ(label_text("trailing  "), "trailing  ");
}

TEST(LabelText, EveryByteOfAnInvalidSequenceBecomesAReplacementCharacter) {
  EXPECT_EQ(label_text("B\xFCro"), "B" + kReplacement + "ro");  // Latin-1
  EXPECT_EQ(label_text("\xFF\xFE"), kReplacement + kReplacement);
  // An ifAlias cut in the middle of a character (its first byte of two).
  EXPECT_EQ(label_text("Keller B\xC3"), "Keller B" + kReplacement);
  EXPECT_EQ(label_text("\xE2\x86"), kReplacement + kReplacement);
  EXPECT_EQ(label_text("\xC0\xAF"), kReplacement + kReplacement);  // overlong '/'
  EXPECT_EQ(label_text("\xE0\x80\xAF"), kReplacement + kReplacement + kReplacement);
  EXPECT_EQ(label_text("\xED\xA0\x80"), kReplacement + kReplacement + kReplacement);  // surrogate
  EXPECT_EQ(label_text("\xF4\x90\x80\x80").size(), 4 * kReplacement.size());          // > U+10FFFF
  EXPECT_EQ(label_text("\x80x"), kReplacement + "x");  // a continuation byte alone
}

TEST(LabelText, AnyInputComesOutValid) {
  // Every single byte and every pair: the output always decodes as UTF-8 (checked by
  // label_text itself being the identity on its output).
  for (int a = 0; a < 256; ++a)
    for (int b = 0; b < 256; ++b) {
      const std::string in{static_cast<char>(a), static_cast<char>(b)};
      const std::string out = label_text(in);
      EXPECT_EQ(label_text(out), out) << a << ' ' << b;
    }
}

}  // namespace
}  // namespace citywatch
