"""xplus_release.evalsuite"""
