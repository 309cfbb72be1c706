"""Reference implementations of other frameworks, outside the tfklgan package."""
