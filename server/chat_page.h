// The chat page `GET /` serves: server/chat_page.html, built into the binary (no build step, no
// external assets) by server/CMakeLists.txt.
#pragma once

#include <string_view>

namespace sluice::server {

std::string_view ChatPageHtml();

}  // namespace sluice::server
