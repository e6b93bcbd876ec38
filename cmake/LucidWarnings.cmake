# Strict warnings for the project's own code only (third-party headers are
# included as SYSTEM so their warnings never fail our build).
function(lucid_strict target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Werror -Wno-error=deprecated-declarations)
endfunction()
