<?xml version="1.0" encoding="UTF-8"?>
<!-- Shows a published Atom feed as a readable page when it is opened in a browser.
     Feed readers ignore it. Written next to the feeds by `aggregator refresh`. -->
<xsl:stylesheet version="1.0"
    xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
    xmlns:atom="http://www.w3.org/2005/Atom"
    exclude-result-prefixes="atom">
  <xsl:output method="html" encoding="UTF-8" doctype-system="about:legacy-compat"/>
  <xsl:template match="/atom:feed">
    <html lang="en">
      <head>
        <meta charset="utf-8"/>
        <meta name="viewport" content="width=device-width, initial-scale=1"/>
        <title><xsl:value-of select="atom:title"/> (feed)</title>
        <style>
          body { font: 16px/1.5 system-ui, sans-serif; max-width: 46rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
          header { border-bottom: 1px solid #ddd; margin-bottom: 1.5rem; }
          .hint { background: #f4f7fb; border: 1px solid #d8e2ef; padding: .75rem 1rem; border-radius: 6px; }
          code { background: #eef; padding: 0 .25rem; border-radius: 3px; word-break: break-all; }
          article { margin: 0 0 1.5rem; }
          h2 { font-size: 1.1rem; margin: 0 0 .2rem; }
          .meta { color: #666; font-size: .85rem; }
          .tag { display: inline-block; background: #eee; border-radius: 3px; padding: 0 .35rem; margin-right: .25rem; }
          a { color: #0b57d0; }
        </style>
      </head>
      <body>
        <header>
          <h1><xsl:value-of select="atom:title"/></h1>
          <p><xsl:value-of select="atom:subtitle"/></p>
          <p class="hint">This is a news feed. To follow it, copy its address into a feed reader
            (Feedly, Inoreader, NetNewsWire, Thunderbird, Miniflux...)<xsl:if test="atom:link[@rel='self']">:
            <code><xsl:value-of select="atom:link[@rel='self']/@href"/></code></xsl:if>.
            <a href="index.html">All feeds</a>.</p>
        </header>
        <xsl:for-each select="atom:entry">
          <article>
            <h2><a href="{atom:link[@rel='alternate']/@href}"><xsl:value-of select="atom:title"/></a></h2>
            <div class="meta">
              <xsl:value-of select="atom:author/atom:name"/>
              <xsl:text> · </xsl:text>
              <xsl:value-of select="substring(atom:published, 1, 10)"/>
              <xsl:text> · </xsl:text>
              <xsl:for-each select="atom:category">
                <span class="tag"><xsl:value-of select="@label"/></span>
              </xsl:for-each>
            </div>
          </article>
        </xsl:for-each>
      </body>
    </html>
  </xsl:template>
</xsl:stylesheet>
