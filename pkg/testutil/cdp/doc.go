// Package cdp drives headless Chromium over the DevTools protocol for
// tests that check a page in a real browser: it starts Chromium on a free
// DevTools port, in its own process group, with a fresh profile, and
// evaluates JavaScript in its first tab. Only _test.go files import it.
package cdp
