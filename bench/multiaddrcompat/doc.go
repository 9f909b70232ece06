// Package multiaddrcompat checks mote's multiaddr package (wire/multiaddr)
// against go-multiaddr itself, byte for byte and text for text, in its
// tests. It lives in the bench module because the main module does not
// require go-multiaddr.
package multiaddrcompat
