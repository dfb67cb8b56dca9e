// The dashboard's files (agent/cs/web/), built into mt-cs by
// cmake/embed_web.cmake: the pages, their script and style. Nothing is
// loaded from anywhere else at run time.
#pragma once

namespace mt::cs {

extern const char kIndexHtml[];
extern const char kLoginHtml[];
extern const char kAppJs[];
extern const char kLoginJs[];
extern const char kStyleCss[];

}  // namespace mt::cs
