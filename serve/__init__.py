"""xplus_release.serve"""
