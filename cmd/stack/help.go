package main

// rootDescription is the DESCRIPTION of `stack --help`: the few commands a first session uses.
const rootDescription = `stack reads a Compose file (stack.yaml, compose.yaml or docker-compose.yml, or -f FILE),
plans what must change on this host and applies the plan with its own container runtime.
There is no daemon: every command reads the file and the records on disk, and exits.

Examples:
   stack up -d --wait                          # start the stack of ./stack.yaml, until healthy
   stack -f examples/stack.yaml ps             # what runs, with ports and addresses
   stack plan                                  # what up would change, and why (exit 2: changes)
   stack -f stack.yaml -f stack.dev.yaml up -d # later files override earlier ones
   stack logs -f web                           # follow one service
   stack exec web sh                           # a shell inside a running container
   stack down -v                               # remove everything, volumes too
   source <(stack completion bash)             # shell completion`
