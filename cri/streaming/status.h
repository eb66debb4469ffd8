// The metav1.Status JSON written to the error stream at the end of an exec/attach (protocol
// v4 and later), in the shape client-go's remotecommand error decoder parses:
//   success: {"metadata":{},"status":"Success"}
//   exit 3:  {"metadata":{},"status":"Failure","message":"command terminated with non-zero
//             exit code: ...","reason":"NonZeroExitCode","details":{"causes":
//             [{"reason":"ExitCode","message":"3"}]}}
//   other:   {"metadata":{},"status":"Failure","message":"...","reason":"InternalError",
//             "details":{"causes":[{"message":"..."}]},"code":500}
#pragma once

#include <string>

namespace berth::cri::streaming {

// Status JSON for a command that exited with `exit_code` (Success for 0).
std::string ExitStatusJson(int exit_code);
// Status JSON for a failure to run the command at all.
std::string InternalErrorStatusJson(const std::string& message);
// What the error channel of the protocols before v4 carries for a status made by the two
// functions above: "" for Success, else the status' message.
std::string LegacyStatusText(const std::string& status_json);

}  // namespace berth::cri::streaming
