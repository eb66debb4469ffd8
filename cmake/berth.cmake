# Small helpers in the style of abseil's absl_cc_library: one library per folder,
# tests beside the code with a ctest label.
set(BERTH_WARNINGS -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers)

# berth_cc_library(NAME name SRCS ... DEPS ...) -> target berth_<name>, alias berth::<name>
function(berth_cc_library)
  cmake_parse_arguments(B "" "NAME" "SRCS;DEPS" ${ARGN})
  add_library(berth_${B_NAME} STATIC ${B_SRCS})
  add_library(berth::${B_NAME} ALIAS berth_${B_NAME})
  target_compile_options(berth_${B_NAME} PRIVATE ${BERTH_WARNINGS})
  target_link_libraries(berth_${B_NAME} PUBLIC ${B_DEPS})
endfunction()

# berth_cc_test(NAME name SRCS ... DEPS ... [LABEL unit|integration]) -> a gtest binary in ctest
function(berth_cc_test)
  cmake_parse_arguments(B "" "NAME;LABEL" "SRCS;DEPS" ${ARGN})
  if(NOT B_LABEL)
    set(B_LABEL unit)
  endif()
  add_executable(${B_NAME} ${B_SRCS})
  target_compile_options(${B_NAME} PRIVATE ${BERTH_WARNINGS})
  target_link_libraries(${B_NAME} PRIVATE ${B_DEPS} GTest::gtest GTest::gmock GTest::gtest_main)
  add_test(NAME ${B_NAME} COMMAND ${B_NAME})
  set_tests_properties(${B_NAME} PROPERTIES LABELS ${B_LABEL} TIMEOUT 300)
endfunction()
