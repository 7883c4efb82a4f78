// Package build owns Dockerfile builds: parsing a Dockerfile with buildkit's reference parser,
// resolving its build context (with .dockerignore) so that no source leaves it, executing each
// step (RUN in a container of stack's own runtime on an overlay of the previous layers, COPY and
// ADD into that overlay), turning each step's overlay upper directory into a layer in the image
// store, caching steps across runs, and committing and tagging the resulting image.
//
// It must not know about networks, volumes or projects beyond the one service it builds, and
// starts no container other than a RUN step's.
package build
